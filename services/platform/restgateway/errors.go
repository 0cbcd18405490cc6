package restgateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"tenantry.dev/platform/grpcerr"
)

// errorDomain is the ErrorInfo domain of the gateway's own errors, as of
// every Tenantry error.
const errorDomain = "tenantry.dev"

// WriteError answers r with err as a JSON google.rpc.Status: code, message
// and details (ErrorInfo, BadRequest field violations, ...), with the HTTP
// status grpc-gateway maps the code to. err may be a gRPC status error, a
// fault, or a *runtime.HTTPStatusError to choose the HTTP status.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	httpStatus := 0
	var custom *runtime.HTTPStatusError
	if errors.As(err, &custom) {
		httpStatus, err = custom.HTTPStatus, custom.Err
	}
	st := grpcerr.Status(err)
	if httpStatus == 0 {
		httpStatus = runtime.HTTPStatusFromCode(st.Code())
	}
	body, merr := protojson.Marshal(st.Proto())
	if merr != nil {
		httpStatus = http.StatusInternalServerError
		body = []byte(`{"code":13,"message":"failed to marshal the error"}`)
	}
	h := w.Header()
	h.Del("Trailer")
	h.Del("Transfer-Encoding")
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	if st.Code() == codes.Unauthenticated {
		h.Set("WWW-Authenticate", `Bearer realm="tenantry"`)
	}
	w.WriteHeader(httpStatus)
	_, _ = w.Write(body)
}

// handleError is the ServeMux's error handler.
func handleError(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	WriteError(w, r, err)
}

// errorWithInfo returns a status error with an ErrorInfo detail.
func errorWithInfo(code codes.Code, reason, msg string) error {
	st := status.New(code, msg)
	if withInfo, err := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: errorDomain}); err == nil {
		st = withInfo
	}
	return st.Err()
}

// bodyTooLarge is the answer to a request body over the limit.
func bodyTooLarge(limit int64) error {
	return &runtime.HTTPStatusError{
		HTTPStatus: http.StatusRequestEntityTooLarge,
		Err: errorWithInfo(codes.ResourceExhausted, "REQUEST_BODY_TOO_LARGE",
			fmt.Sprintf("the request body is larger than %d bytes", limit)),
	}
}
