// Package kubernetes holds the tests of deploy/kubernetes: every overlay is
// rendered with kustomize (a pinned Go library, not a binary on the PATH),
// each object is decoded strictly into the Kubernetes API's own Go types,
// and what matters for running Tenantry is checked: gRPC probes, non-root
// pods, resources, disruption budgets, autoscalers, network policies,
// references between objects, the environment each service really reads,
// and the images `make image` builds.
package kubernetes
