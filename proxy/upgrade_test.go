package proxy

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// frame encodes one WebSocket frame header and payload.
func frame(opcode byte, masked bool, n int) []byte {
	b := []byte{0x80 | opcode}
	m := byte(0)
	if masked {
		m = 0x80
	}
	switch {
	case n < 126:
		b = append(b, m|byte(n))
	case n < 1<<16:
		b = append(b, m|126, 0, 0)
		binary.BigEndian.PutUint16(b[2:], uint16(n))
	default:
		b = append(b, m|127, 0, 0, 0, 0, 0, 0, 0, 0)
		binary.BigEndian.PutUint64(b[2:], uint64(n))
	}
	if masked {
		b = append(b, 1, 2, 3, 4)
	}
	return append(b, make([]byte, n)...)
}

// TestFrameTracker: frames of every header size, masked or not, fed in
// random pieces: the tracker is at a boundary exactly after each frame,
// and reports the first close frame once.
func TestFrameTracker(t *testing.T) {
	t.Parallel()
	sizes := []int{0, 1, 125, 126, 127, 65535, 65536, 70000}
	for seed := range uint64(50) {
		r := rand.New(rand.NewPCG(seed, 1))
		var stream []byte
		var ends []int
		closeAt := -1
		for i := range 20 {
			op := byte(0x1 + r.IntN(2))
			if i == 10 {
				op = 0x8
				closeAt = len(stream)
			}
			if i == 15 {
				op = 0x8 // a second close frame is not "first"
			}
			stream = append(stream, frame(op, r.IntN(2) == 0, sizes[r.IntN(len(sizes))]%126*boolInt(op == 0x8)+sizes[r.IntN(len(sizes))]*boolInt(op != 0x8))...)
			ends = append(ends, len(stream))
		}
		var f frameTracker
		firsts := 0
		pos, e := 0, 0
		for pos < len(stream) {
			k := 1 + r.IntN(3000)
			if pos+k > len(stream) {
				k = len(stream) - pos
			}
			// Feed up to the next frame end at most, to check the
			// boundary there.
			if pos+k > ends[e] {
				k = ends[e] - pos
			}
			if f.feed(stream[pos : pos+k]) {
				firsts++
				if pos+k <= closeAt {
					t.Fatalf("seed %d: close reported at %d, before the close frame at %d", seed, pos+k, closeAt)
				}
			}
			pos += k
			if pos == ends[e] {
				if !f.atBoundary() {
					t.Fatalf("seed %d: not at a boundary after frame %d", seed, e)
				}
				e++
			} else if f.atBoundary() {
				t.Fatalf("seed %d: at a boundary inside frame %d (pos %d, end %d)", seed, e, pos, ends[e])
			}
		}
		if firsts != 1 {
			t.Fatalf("seed %d: first close reported %d times", seed, firsts)
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
