package service

import (
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"

	"tenantry.dev/platform/grpcerr"
)

// writeError answers with err as a JSON google.rpc.Status, with the HTTP
// status grpc-gateway gives its code, as Tenantry's REST APIs do.
func writeError(w http.ResponseWriter, err error) {
	st := grpcerr.Status(err)
	body, merr := protojson.Marshal(st.Proto())
	code := runtime.HTTPStatusFromCode(st.Code())
	if merr != nil {
		code, body = http.StatusInternalServerError, []byte(`{"code":13,"message":"failed to marshal the error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	if st.Code() == codes.Unauthenticated {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tenantry"`)
	}
	w.WriteHeader(code)
	_, _ = w.Write(body)
}
