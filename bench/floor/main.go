// Command floor is the bench harness's floor: the barest reverse proxy
// fasthttp allows, a fasthttp.Server whose handler hands each request to a
// fasthttp.HostClient, with response streaming on (the gateway streams too)
// and no features at all: no header hygiene, no routing, no metrics, no
// logs. Its CPU per request is what these libraries cost; the gateway's
// own code is measured as the ratio to it. With -timeouts the server has
// the gateway's default client timeouts (read_header 10s, write 60s, idle
// 75s), which fasthttp enforces with a deadline set per request: the part
// of the gap to the floor that any proxy with timeouts pays.
//
//	floor -listen 127.0.0.1:8080 -upstream 127.0.0.1:9000 [-timeouts]
package main

import (
	"flag"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/valyala/fasthttp"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "listen address")
	up := flag.String("upstream", "", "upstream host:port")
	timeouts := flag.Bool("timeouts", false, "the gateway's default client timeouts")
	flag.Parse()
	hc := &fasthttp.HostClient{
		Addr:                          *up,
		NoDefaultUserAgentHeader:      true,
		MaxConns:                      1024,
		StreamResponseBody:            true,
		DisablePathNormalizing:        true,
		DisableHeaderNamesNormalizing: true,
	}
	s := &fasthttp.Server{
		StreamRequestBody:             true,
		DisableHeaderNamesNormalizing: true,
		NoDefaultServerHeader:         true,
		Handler: func(ctx *fasthttp.RequestCtx) {
			if err := hc.Do(&ctx.Request, &ctx.Response); err != nil {
				ctx.Error(err.Error(), fasthttp.StatusBadGateway)
			}
		},
	}
	if *timeouts {
		s.ReadTimeout, s.WriteTimeout, s.IdleTimeout = 10*time.Second, 60*time.Second, 75*time.Second
	}
	go func() {
		c := make(chan os.Signal, 1)
		signal.Notify(c, os.Interrupt)
		<-c
		_ = s.Shutdown()
	}()
	if err := s.ListenAndServe(*listen); err != nil {
		log.Fatal(err)
	}
}
