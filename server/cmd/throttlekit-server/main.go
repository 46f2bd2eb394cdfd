// Command throttlekit-server serves ThrottleKit rate-limit decisions over gRPC.
package main

import "github.com/throttlekit/throttlekit-go/server/app"

func main() { app.Main(app.Options{RequestClock: requestClock}) }
