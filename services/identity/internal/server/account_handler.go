package server

import (
	"context"
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/identity/internal/account"
	"tenantry.dev/identity/internal/i18n"
)

// accountServer implements AccountService (account.proto).
type accountServer struct {
	identityv1.UnimplementedAccountServiceServer
	accounts *account.Manager
}

var _ identityv1.AccountServiceServer = (*accountServer)(nil)

// ExportAccountData implements AccountServiceServer.
func (s *accountServer) ExportAccountData(ctx context.Context, _ *identityv1.ExportAccountDataRequest) (*identityv1.ExportAccountDataResponse, error) {
	export, err := s.accounts.ExportAccount(ctx, tenantFrom(ctx), clientOf(ctx))
	if err != nil {
		return nil, err
	}
	// The export's JSON (its field names and formats) is the domain's;
	// the Struct carries it as it is.
	raw, err := json.Marshal(export)
	if err != nil {
		return nil, fmt.Errorf("export account: encode: %w", err)
	}
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, fmt.Errorf("export account: decode: %w", err)
	}
	data, err := structpb.NewStruct(fields)
	if err != nil {
		return nil, fmt.Errorf("export account: struct: %w", err)
	}
	return &identityv1.ExportAccountDataResponse{Data: data}, nil
}

// RequestAccountDeletion implements AccountServiceServer.
func (s *accountServer) RequestAccountDeletion(ctx context.Context, _ *identityv1.RequestAccountDeletionRequest) (*identityv1.RequestAccountDeletionResponse, error) {
	at, err := s.accounts.RequestDeletion(ctx, tenantFrom(ctx), clientOf(ctx))
	if err != nil {
		return nil, err
	}
	return &identityv1.RequestAccountDeletionResponse{DeleteTime: timestamppb.New(at)}, nil
}

// CancelAccountDeletion implements AccountServiceServer.
func (s *accountServer) CancelAccountDeletion(ctx context.Context, _ *identityv1.CancelAccountDeletionRequest) (*identityv1.CancelAccountDeletionResponse, error) {
	if err := s.accounts.CancelDeletion(ctx, tenantFrom(ctx), clientOf(ctx)); err != nil {
		return nil, err
	}
	return &identityv1.CancelAccountDeletionResponse{}, nil
}

// GetAccountDeletion implements AccountServiceServer.
func (s *accountServer) GetAccountDeletion(ctx context.Context, _ *identityv1.GetAccountDeletionRequest) (*identityv1.GetAccountDeletionResponse, error) {
	at, err := s.accounts.DeletionTime(ctx, tenantFrom(ctx), clientOf(ctx))
	if err != nil {
		return nil, err
	}
	resp := &identityv1.GetAccountDeletionResponse{}
	if !at.IsZero() {
		resp.DeleteTime = timestamppb.New(at)
	}
	return resp, nil
}

// PreviewEmail implements AccountServiceServer.
func (s *accountServer) PreviewEmail(ctx context.Context, req *identityv1.PreviewEmailRequest) (*identityv1.PreviewEmailResponse, error) {
	lang := i18n.FromContext(ctx) // the caller's Accept-Language
	if req.GetLanguage() != "" {
		lang = i18n.Match(req.GetLanguage())
	}
	r, err := s.accounts.PreviewMail(ctx, tenantFrom(ctx), clientOf(ctx), req.GetKind(), lang)
	if err != nil {
		return nil, err
	}
	return &identityv1.PreviewEmailResponse{Subject: r.Subject, Text: r.Text, Html: r.HTML, Language: i18n.Base(r.Lang)}, nil
}

// ListEmailKinds implements AccountServiceServer.
func (s *accountServer) ListEmailKinds(context.Context, *identityv1.ListEmailKindsRequest) (*identityv1.ListEmailKindsResponse, error) {
	resp := &identityv1.ListEmailKindsResponse{Kinds: account.MailKinds()}
	for _, tag := range i18n.Supported {
		resp.Languages = append(resp.Languages, i18n.Base(tag))
	}
	return resp, nil
}

// ListEmailAddresses implements AccountServiceServer.
func (s *accountServer) ListEmailAddresses(ctx context.Context, _ *identityv1.ListEmailAddressesRequest) (*identityv1.ListEmailAddressesResponse, error) {
	addresses, err := s.accounts.ListEmailAddresses(ctx, tenantFrom(ctx), clientOf(ctx))
	if err != nil {
		return nil, err
	}
	resp := &identityv1.ListEmailAddressesResponse{}
	for _, a := range addresses {
		resp.EmailAddresses = append(resp.EmailAddresses, &identityv1.EmailAddress{
			Email: a.Email, Primary: a.Primary, Verified: a.Verified(), CreateTime: timestamppb.New(a.CreateTime)})
	}
	return resp, nil
}

// AddEmailAddress implements AccountServiceServer.
func (s *accountServer) AddEmailAddress(ctx context.Context, req *identityv1.AddEmailAddressRequest) (*identityv1.AddEmailAddressResponse, error) {
	if err := s.accounts.AddEmailAddress(ctx, tenantFrom(ctx), clientOf(ctx), req.GetEmail()); err != nil {
		return nil, err
	}
	return &identityv1.AddEmailAddressResponse{}, nil
}

// VerifyEmailAddress implements AccountServiceServer.
func (s *accountServer) VerifyEmailAddress(ctx context.Context, req *identityv1.VerifyEmailAddressRequest) (*identityv1.VerifyEmailAddressResponse, error) {
	email, err := s.accounts.VerifyEmailAddress(ctx, tenantFrom(ctx), req.GetToken(), clientOf(ctx))
	if err != nil {
		return nil, err
	}
	return &identityv1.VerifyEmailAddressResponse{Email: email}, nil
}

// SetPrimaryEmailAddress implements AccountServiceServer.
func (s *accountServer) SetPrimaryEmailAddress(ctx context.Context, req *identityv1.SetPrimaryEmailAddressRequest) (*identityv1.SetPrimaryEmailAddressResponse, error) {
	if err := s.accounts.SetPrimaryEmailAddress(ctx, tenantFrom(ctx), clientOf(ctx), req.GetEmail()); err != nil {
		return nil, err
	}
	return &identityv1.SetPrimaryEmailAddressResponse{}, nil
}

// RemoveEmailAddress implements AccountServiceServer.
func (s *accountServer) RemoveEmailAddress(ctx context.Context, req *identityv1.RemoveEmailAddressRequest) (*identityv1.RemoveEmailAddressResponse, error) {
	if err := s.accounts.RemoveEmailAddress(ctx, tenantFrom(ctx), clientOf(ctx), req.GetEmail()); err != nil {
		return nil, err
	}
	return &identityv1.RemoveEmailAddressResponse{}, nil
}
