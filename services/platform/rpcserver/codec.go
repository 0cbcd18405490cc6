package rpcserver

import (
	"bytes"
	"context"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"

	"tenantry.dev/platform/fault"
)

// ReasonRequestMalformed is the reason of the InvalidArgument answer to a
// request that is not a valid protobuf encoding of its message: truncated,
// corrupt, or with a string field that is not UTF-8.
const ReasonRequestMalformed = "REQUEST_MALFORMED"

// A request that cannot be decoded is the caller's mistake, yet grpc-go
// answers it with Internal, and nothing a server configures can change that
// code: recv (rpc_util.go, grpc-go 1.85) replaces any error of the codec's
// Unmarshal with status.Errorf(codes.Internal, "grpc: failed to unmarshal
// the received message: %v", err), so a status the codec returns is not
// passed through; and serverStream.RecvMsg (stream.go) writes that status
// to the wire at once, before the handler, and so every interceptor, gets
// the error back. A unary request is decoded by the generated handler even
// before the interceptors run.
//
// So the codec does not fail. requestCodec is grpc-go's own proto codec
// except that, when a request does not decode, it resets the message to
// empty and records why in the message's unknown fields, under a field
// number no Tenantry message uses (malformedField); the interceptors that
// refuseMalformedRequests installs then answer InvalidArgument, with
// ReasonRequestMalformed, before the handler sees the message. The record lives and dies with the message, so nothing
// is left behind when a call ends early, for instance because its caller
// was not authenticated. A client that sends that unknown field itself is
// told its request is malformed, which is no loss.
type requestCodec struct {
	proto encoding.CodecV2
}

// newRequestCodec returns the codec for Config's server, wrapping the proto
// codec grpc-go registers.
func newRequestCodec() requestCodec {
	return requestCodec{proto: encoding.GetCodecV2(protocodec.Name)}
}

// Marshal encodes a response as the proto codec does.
func (c requestCodec) Marshal(v any) (mem.BufferSlice, error) {
	return c.proto.Marshal(v)
}

// Unmarshal decodes a request as the proto codec does, but records a
// malformed request in the message instead of failing (see requestCodec).
// Only a v that is no protobuf message, a bug of ours, is still an error.
func (c requestCodec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.proto.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	m := messageOf(v)
	if m == nil || !errors.Is(err, proto.Error) {
		return err
	}
	mark := markCorrupt
	var utf8Err interface{ InvalidUTF8() bool }
	if errors.As(err, &utf8Err) && utf8Err.InvalidUTF8() {
		mark = markInvalidUTF8
	}
	// The message may hold what was decoded before the error: nothing of a
	// malformed request reaches the handler, not even by mistake.
	proto.Reset(m)
	m.ProtoReflect().SetUnknown(mark)
	return nil
}

// Name is the proto codec's: clients see no difference.
func (c requestCodec) Name() string { return c.proto.Name() }

// malformedField is the field number under which requestCodec records a
// request that did not decode: the largest protobuf allows, which no
// Tenantry message uses.
const malformedField = protowire.MaxValidNumber

// The records requestCodec leaves in a malformed request's unknown fields.
var (
	markCorrupt     = malformedMark(1)
	markInvalidUTF8 = malformedMark(2)
)

func malformedMark(kind uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, malformedField, protowire.VarintType), kind)
}

// malformed returns the fault for a request that requestCodec marked as
// malformed, and nil for any other.
func malformed(req any) error {
	m := messageOf(req)
	if m == nil {
		return nil
	}
	unknown := m.ProtoReflect().GetUnknown()
	switch {
	case len(unknown) == 0:
		return nil
	case bytes.Equal(unknown, markInvalidUTF8):
		return fault.New(fault.InvalidArgument, ReasonRequestMalformed,
			"the request has a string field that is not valid UTF-8; protobuf strings must be UTF-8 (binary data belongs in bytes fields)")
	case bytes.Equal(unknown, markCorrupt):
		return fault.New(fault.InvalidArgument, ReasonRequestMalformed,
			"the request is not a valid protobuf message: it is truncated or its encoding is corrupt; send a complete message of the method's request type")
	}
	return nil
}

// messageOf returns v as a protobuf message, or nil if it is none.
func messageOf(v any) proto.Message {
	switch v := v.(type) {
	case proto.Message:
		return v
	case protoadapt.MessageV1:
		return protoadapt.MessageV2Of(v)
	}
	return nil
}

// refuseMalformedRequests puts the malformed-request check into a server's
// options: the codec, and interceptors that run first among the service's
// own (Config.UnaryInterceptors and StreamInterceptors), so that requests
// are refused after authentication, with the error mapped and the call
// logged like any other refusal.
func refuseMalformedRequests(cfg *Config) grpc.ServerOption {
	cfg.UnaryInterceptors = append([]grpc.UnaryServerInterceptor{unaryRefuseMalformed}, cfg.UnaryInterceptors...)
	cfg.StreamInterceptors = append([]grpc.StreamServerInterceptor{streamRefuseMalformed}, cfg.StreamInterceptors...)
	return grpc.ForceServerCodecV2(newRequestCodec())
}

func unaryRefuseMalformed(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := malformed(req); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func streamRefuseMalformed(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, checkedStream{ss})
}

// checkedStream refuses each malformed message it receives.
type checkedStream struct {
	grpc.ServerStream
}

// RecvMsg receives m and fails if it did not decode.
func (s checkedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return malformed(m)
}
