package server

import (
	"sync"

	"google.golang.org/protobuf/proto"
)

// jsonMemo remembers the gateway JSON (restJSON) of the messages of one
// type by their binary encoding: protojson spends most of a cheap route's
// time on reflection (GET /v1/auth/me: ~12 µs of its ~20 in identity's
// handler), while the binary encoding that keys the memo costs a tenth of
// it. The JSON is a function of the message's content, so a remembered
// answer is byte for byte the one marshalling would give (protojson's
// deliberately unstable spacing is fixed within one binary). Keys name
// content, not callers: two callers share an entry only when their
// answers are equal. A memo holds one message type, since binary
// encodings of different types may coincide; at most max entries, a
// tenth dropped at random when full. Callers must not change the bytes.
type jsonMemo struct {
	max int

	mu      sync.Mutex
	answers map[string][]byte
}

func newJSONMemo(max int) *jsonMemo {
	return &jsonMemo{max: max, answers: make(map[string][]byte)}
}

// marshal returns m in the gateway's JSON.
func (j *jsonMemo) marshal(m proto.Message) ([]byte, error) {
	key, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return restJSON.Marshal(m)
	}
	j.mu.Lock()
	body, ok := j.answers[string(key)]
	j.mu.Unlock()
	if ok {
		return body, nil
	}
	if body, err = restJSON.Marshal(m); err != nil {
		return nil, err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.answers) >= j.max {
		drop := max(len(j.answers)/10, 1)
		for k := range j.answers {
			delete(j.answers, k)
			if drop--; drop == 0 {
				break
			}
		}
	}
	j.answers[string(key)] = body
	return body, nil
}
