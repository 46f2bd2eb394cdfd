package conformance

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/server/store/dynstore"
)

// TestMotoConditionalPutRace is the minimal reproduction of why the suite
// serves moto one request at a time: on moto's own threaded server, two
// PutItems conditioned on the same version can both succeed (moto reads
// the item, evaluates the condition and stores the new item with nothing
// held in between), which DynamoDB never allows. No store can stay exact
// over a compare-and-set that is not atomic, so the suite's endpoint must
// have DynamoDB's atomicity: served one at a time, the same race never
// lets two puts through.
func TestMotoConditionalPutRace(t *testing.T) {
	if testing.Short() {
		t.Skip("starts moto twice")
	}
	racy := harness.StartMoto(t, harness.MotoOptions{Racy: true, SwitchInterval: time.Microsecond})
	if doubles := conditionalPutDoubles(t, racy.Endpoint, 400, true); doubles == 0 {
		t.Fatal("moto's threaded server never let two conditional puts on one version through in 400 rounds: " +
			"if it is atomic now, serving it one request at a time is no longer needed")
	}
	serial := harness.StartMoto(t, harness.MotoOptions{SwitchInterval: time.Microsecond})
	if doubles := conditionalPutDoubles(t, serial.Endpoint, 200, false); doubles != 0 {
		t.Fatalf("served one request at a time, %d rounds still let two conditional puts on one version through", doubles)
	}
}

// conditionalPutDoubles runs up to rounds rounds of 16 concurrent puts,
// each conditioned on the version of the round before, and counts the
// rounds in which more than one succeeded (stopping at the first when
// stopEarly).
func conditionalPutDoubles(t *testing.T, endpoint string, rounds int, stopEarly bool) int {
	t.Helper()
	ctx := context.Background()
	if _, err := dynstore.New(ctx, dynstore.Options{Table: "race", Endpoint: endpoint, CreateTable: true}); err != nil {
		t.Fatal(err)
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	db := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		o.BaseEndpoint, o.RetryMaxAttempts = aws.String(endpoint), 1
	})
	put := func(version int, writer int, cond *int) error {
		in := &dynamodb.PutItemInput{TableName: aws.String("race"), Item: map[string]types.AttributeValue{
			"pk":      &types.AttributeValueMemberS{Value: "k"},
			"version": &types.AttributeValueMemberN{Value: strconv.Itoa(version)},
			"writer":  &types.AttributeValueMemberN{Value: strconv.Itoa(writer)},
		}}
		if cond != nil {
			in.ConditionExpression = aws.String("version = :v")
			in.ExpressionAttributeValues = map[string]types.AttributeValue{":v": &types.AttributeValueMemberN{Value: strconv.Itoa(*cond)}}
		}
		_, err := db.PutItem(ctx, in)
		return err
	}
	if err := put(0, -1, nil); err != nil {
		t.Fatal(err)
	}
	doubles := 0
	for r := 0; r < rounds; r++ {
		var won atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				err := put(r+1, w, &r)
				var lost *types.ConditionalCheckFailedException
				switch {
				case err == nil:
					won.Add(1)
				case !errors.As(err, &lost):
					t.Error(err)
				}
			}()
		}
		close(start)
		wg.Wait()
		switch n := won.Load(); {
		case n == 0:
			t.Fatalf("round %d: no put succeeded", r)
		case n > 1:
			doubles++
			t.Logf("round %d: %d puts conditioned on version %d all succeeded", r, n, r)
			if stopEarly {
				return doubles
			}
		}
	}
	return doubles
}
