package rpcserver_test

import (
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"tenantry.dev/platform/rpcserver"
)

// rawCodec is a client codec that sends a []byte as it is and receives
// the raw bytes of the answer, so that a test can put any bytes on the wire.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

func (rawCodec) Name() string { return "proto" }

// stringField encodes field 1 as a length-delimited field with payload
// taken as it is: the wire form of a StringValue or HealthCheckRequest,
// whether or not payload is UTF-8.
func stringField(payload string) []byte {
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	return protowire.AppendBytes(b, []byte(payload))
}

// malformedRequests are request bodies that no protobuf decoder accepts for
// a message with string field 1.
var malformedRequests = []struct {
	name string
	body []byte
}{
	{"a string field that is not UTF-8", stringField("hi\xff\xfe")},
	{"a string field truncated in the middle", stringField("hello")[:4]},
	{"a length beyond the end of the message", []byte{0x0a, 0x7f, 'a'}},
	{"a tag cut off in its varint", []byte{0xff}},
	{"a field with wire type 7, which does not exist", []byte{0x0f}},
	{"field number zero", []byte{0x02, 0x00}},
}

// requireMalformed checks that err is the InvalidArgument answer to a
// malformed request.
func requireMalformed(t *testing.T, err error) {
	t.Helper()
	st, ok := status.FromError(err)
	require.True(t, ok, "not a status: %v", err)
	require.Equal(t, codes.InvalidArgument, st.Code(), "message: %s", st.Message())
	var reason, domain string
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			reason, domain = info.GetReason(), info.GetDomain()
		}
	}
	require.Equal(t, rpcserver.ReasonRequestMalformed, reason)
	require.Equal(t, "tenantry.dev", domain)
}

func TestMalformedRequestsAreInvalidArgument(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	raw := grpc.ForceCodecV2(rawCodec{})

	for _, tc := range malformedRequests {
		t.Run("a unary call with "+tc.name+" is refused", func(t *testing.T) {
			t.Parallel()
			var reply []byte
			err := h.conn.Invoke(callCtx(t, operatorToken, ""), echoMethod, &tc.body, &reply, raw)
			requireMalformed(t, err)
		})
		t.Run("a health check with "+tc.name+" is refused", func(t *testing.T) {
			t.Parallel()
			var reply []byte
			err := h.conn.Invoke(callCtx(t, "", ""), "/grpc.health.v1.Health/Check", &tc.body, &reply, raw)
			requireMalformed(t, err)
		})
		t.Run("a stream opened with "+tc.name+" is refused", func(t *testing.T) {
			t.Parallel()
			stream, err := h.conn.NewStream(callCtx(t, operatorToken, ""), &grpc.StreamDesc{ServerStreams: true}, countMethod, raw)
			require.NoError(t, err)
			require.NoError(t, stream.SendMsg(&tc.body))
			require.NoError(t, stream.CloseSend())
			var reply []byte
			err = stream.RecvMsg(&reply)
			require.False(t, errors.Is(err, io.EOF), "the stream ended without an error")
			requireMalformed(t, err)
		})
	}

	t.Run("the refusal is logged like any other, with its reason", func(t *testing.T) {
		t.Parallel()
		body := stringField("\xff")
		var reply []byte
		err := h.conn.Invoke(callCtx(t, operatorToken, "req-malformed-1"), echoMethod, &body, &reply, raw)
		requireMalformed(t, err)
		rec := h.logs.callRecord(t, "req-malformed-1")
		require.Equal(t, "InvalidArgument", rec["code"])
		require.Equal(t, rpcserver.ReasonRequestMalformed, rec["reason"])
		require.Equal(t, "INFO", rec["level"], "a caller's mistake, not ours")
	})

	t.Run("authentication still comes first", func(t *testing.T) {
		t.Parallel()
		body := stringField("\xff")
		var reply []byte
		err := h.conn.Invoke(callCtx(t, "", ""), echoMethod, &body, &reply, raw)
		require.Equal(t, codes.Unauthenticated, status.Code(err))
	})

	t.Run("a well-formed request sent as raw bytes is served", func(t *testing.T) {
		t.Parallel()
		body := stringField("hi")
		var reply []byte
		require.NoError(t, h.conn.Invoke(callCtx(t, operatorToken, "req-raw-ok"), echoMethod, &body, &reply, raw))
		out := new(wrapperspb.StringValue)
		require.NoError(t, proto.Unmarshal(reply, out))
		require.Equal(t, "operator|req-raw-ok", out.GetValue())
	})

	t.Run("unknown fields of a well-formed request are no reason to refuse it", func(t *testing.T) {
		t.Parallel()
		body := protowire.AppendVarint(protowire.AppendTag(stringField("hi"), 99, protowire.VarintType), 1)
		var reply []byte
		require.NoError(t, h.conn.Invoke(callCtx(t, operatorToken, ""), echoMethod, &body, &reply, raw))
	})
}

func TestResponsesStillUseTheProtoCodec(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	got, _, err := h.echo(callCtx(t, operatorToken, "req-codec-1"), "hi")
	require.NoError(t, err)
	require.Equal(t, "operator|req-codec-1", got)
	values, _, err := h.count(callCtx(t, operatorToken, "req-codec-2"), "x")
	require.NoError(t, err)
	require.Len(t, values, 3)
}
