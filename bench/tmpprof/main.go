package main

import (
	"context"
	"net/http"
	_ "net/http/pprof"
	"os"

	"github.com/throttlekit/throttlekit-go/server/app"
)

func main() {
	go http.ListenAndServe("127.0.0.1:6060", nil)
	os.Exit(app.Run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
