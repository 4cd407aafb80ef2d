package tunnel

// frameTracker follows WebSocket frame boundaries (RFC 6455 §5.2) in one
// direction, reading only headers, so a close frame can be put between
// two frames and the first close frame seen.
type frameTracker struct {
	hdr       [14]byte
	have      int    // header bytes read
	need      int    // header length once known (0: not yet)
	remaining uint64 // payload bytes left in the current frame
	sawClose  bool
}

// feed advances over p; it reports whether p held the direction's first
// close frame header.
func (f *frameTracker) feed(p []byte) (firstClose bool) {
	for len(p) > 0 {
		if f.remaining > 0 {
			k := min(uint64(len(p)), f.remaining)
			f.remaining -= k
			p = p[k:]
			continue
		}
		f.hdr[f.have] = p[0]
		f.have++
		p = p[1:]
		if f.have == 2 {
			f.need = 2
			switch f.hdr[1] & 0x7f {
			case 126:
				f.need += 2
			case 127:
				f.need += 8
			}
			if f.hdr[1]&0x80 != 0 {
				f.need += 4 // masking key
			}
		}
		if f.have < 2 || f.have < f.need {
			continue
		}
		var n uint64
		switch l := f.hdr[1] & 0x7f; l {
		case 126:
			n = uint64(f.hdr[2])<<8 | uint64(f.hdr[3])
		case 127:
			for i := 2; i < 10; i++ {
				n = n<<8 | uint64(f.hdr[i])
			}
		default:
			n = uint64(l)
		}
		if f.hdr[0]&0x0f == 0x8 && !f.sawClose {
			f.sawClose, firstClose = true, true
		}
		f.remaining, f.have, f.need = n, 0, 0
	}
	return firstClose
}

func (f *frameTracker) atBoundary() bool { return f.remaining == 0 && f.have == 0 }
