package conformance

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/store/dynstore"
	"github.com/throttlekit/throttlekit-go/server/store/pgstore"
)

// Store benchmarks against real servers started on loopback. Compare the
// sub-benchmarks of one run (see BENCHMARKS.md):
//
//	go -C conformance test -run '^$' -bench 'Postgres|Dynamo' -benchtime 2s

var benchStrategy engine.Strategy = func() engine.Strategy {
	g, _ := engine.NewGCRA(1_000_000_000, 1000, 1_000_000)
	return g
}()

// storeBenches runs the common sub-benchmarks of a store.
func storeBenches(b *testing.B, s store.Store) {
	ctx := context.Background()
	b.Run("check", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := s.Check(ctx, benchStrategy, store.Key{Prefix: "b", ID: "k" + strconv.Itoa(i%1000)}, 0, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
	parallel := func(hot bool) func(b *testing.B) {
		return func(b *testing.B) {
			b.SetParallelism(8) // 16 clients on 2 procs
			var n atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := "hot"
					if !hot {
						id = "k" + strconv.FormatInt(n.Add(1), 10)
					}
					if _, err := s.Check(ctx, benchStrategy, store.Key{Prefix: "p", ID: id}, 0, 1); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
	b.Run("16-clients-distinct-keys", parallel(false))
	b.Run("16-clients-one-hot-key", parallel(true))
}

func BenchmarkPostgres(b *testing.B) {
	pg := harness.StartPostgres(b)
	s, err := pgstore.New(context.Background(), pgstore.Options{URL: pg.URL, Timeout: 10e9})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	pool, err := pgxpool.New(context.Background(), pg.URL)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	b.Run("select-1", func(b *testing.B) {
		var one int
		for i := 0; i < b.N; i++ {
			if err := pool.QueryRow(context.Background(), "SELECT 1").Scan(&one); err != nil {
				b.Fatal(err)
			}
		}
	})
	storeBenches(b, s)
}

func BenchmarkDynamo(b *testing.B) {
	d := harness.StartDynamo(b)
	s, err := dynstore.New(context.Background(), dynstore.Options{Table: "bench", Endpoint: d.Endpoint, CreateTable: true, Timeout: 60e9, Retries: 100000})
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	db := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(d.Endpoint) })
	b.Run("getitem", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			_, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String("bench"), ConsistentRead: aws.Bool(true),
				Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: fmt.Sprint("b:k", i%1000)}}})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	storeBenches(b, s)
}
