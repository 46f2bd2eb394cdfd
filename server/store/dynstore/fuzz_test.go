package dynstore

import (
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
)

// FuzzDecodeItem feeds arbitrary items (attributes of any text, as numbers
// or strings) to the decoder of every DynamoDB read: it never panics; an
// item it refuses is ErrCorrupt (the store replaces it); one it accepts
// holds sane state.
func FuzzDecodeItem(f *testing.F) {
	f.Add("1700000000000 0", "3", "1800000000000", false, false)
	f.Add("garbage", "1", "1800000000000", false, false)
	f.Add("1e308 0", "1", "1800000000000", false, false)
	f.Add("0 1", "one", "1800000000000", false, false)
	f.Add("5", "1", "x", true, false)
	f.Add("1 2", "1", "1", false, true)
	f.Fuzz(func(t *testing.T, state, version, deadline string, stateIsNumber, versionIsString bool) {
		item := map[string]types.AttributeValue{
			"state":       &types.AttributeValueMemberS{Value: state},
			"version":     &types.AttributeValueMemberN{Value: version},
			"deadline_ms": &types.AttributeValueMemberN{Value: deadline},
		}
		if stateIsNumber {
			item["state"] = &types.AttributeValueMemberN{Value: state}
		}
		if versionIsString {
			item["version"] = &types.AttributeValueMemberS{Value: version}
		}
		g, _ := engine.NewGCRA(10, 1000, 5)
		const now = int64(1_700_000_000_000)
		it, err := decodeItem(g, item, now)
		if err != nil {
			if !errors.Is(err, engine.ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if !it.exists || !engine.Sane(g, &it.state, now) {
			t.Fatalf("accepted item %v decoded to %+v", item, it)
		}
	})
}
