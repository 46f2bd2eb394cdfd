module github.com/throttlekit/throttlekit-go/bench

go 1.26.0

require (
	github.com/go-redis/redis_rate/v10 v10.0.1
	github.com/redis/go-redis/v9 v9.23.0
	github.com/throttlekit/throttlekit-go v0.6.0
	github.com/throttlekit/throttlekit-go/server v0.6.0
	golang.org/x/time v0.16.0
	google.golang.org/grpc v1.85.0
)
