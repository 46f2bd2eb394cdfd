module github.com/throttlekit/throttlekit-go/server

go 1.26.0

require github.com/throttlekit/throttlekit-go/sdk-go v0.0.0

require (
	go.yaml.in/yaml/v3 v3.0.6
	golang.org/x/time v0.16.0
	google.golang.org/grpc v1.85.0
)

require (
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
	golang.org/x/text v0.42.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260817212433-ac3dfec99bb1 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

replace github.com/throttlekit/throttlekit-go/sdk-go => ../sdk-go
