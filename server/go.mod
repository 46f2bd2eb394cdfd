module github.com/throttlekit/throttlekit-go/server

go 1.26.0

require github.com/throttlekit/throttlekit-go/sdk-go v0.0.0

require go.yaml.in/yaml/v3 v3.0.6

replace github.com/throttlekit/throttlekit-go/sdk-go => ../sdk-go
