package harness

import "github.com/throttlekit/throttlekit-go/server/store/storetest/services"

// The stores' real servers, started by package services (which the store
// packages' own tests use too), under the names the suite uses.
type (
	Redis       = services.Redis
	Cluster     = services.Cluster
	Postgres    = services.Postgres
	Dynamo      = services.Dynamo
	MotoOptions = services.MotoOptions
)

var (
	FreePort      = services.FreePort
	StartRedis    = services.StartRedis
	StartCluster  = services.StartCluster
	StartSentinel = services.StartSentinel
	RedisClient   = services.RedisClient
	StartPostgres = services.StartPostgres
	StartDynamo   = services.StartDynamo
	StartMoto     = services.StartMoto
	waitClusterOK = services.WaitClusterOK
	pingPostgres  = services.PingPostgres
	fakeAWS       = services.FakeAWS
)
