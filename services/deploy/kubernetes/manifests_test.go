package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"tenantry.dev/deploy/images"
)

// overlays are the kustomizations people apply: each is rendered and
// checked whole.
var overlays = []string{"overlays/dev", "overlays/production", "examples/cloudnative-pg"}

// binDir holds the images' binaries built for this machine: the tests ask
// them which variables they read and run the migrate Job's command line.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "tenantry-manifests-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		if err := images.BuildBinaries(context.Background(), "go", repoRoot(), runtime.GOARCH, dir, images.Catalog()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		binDir = dir
		return m.Run()
	}())
}

// envReadBy lists the variables a service reads, from its -h (flagenv
// names each flag's variable there as "(env NAME)").
func envReadBy(t *testing.T, binary string) []string {
	t.Helper()
	out, _ := exec.Command(filepath.Join(binDir, binary), "-h").CombinedOutput()
	var vars []string
	for _, m := range regexp.MustCompile(`\(env ([A-Z0-9_]+)\)`).FindAllStringSubmatch(string(out), -1) {
		vars = append(vars, m[1])
	}
	require.Contains(t, vars, "DATABASE_URL", "%s -h names its variables:\n%s", binary, out)
	return vars
}

func TestOverlays(t *testing.T) {
	t.Parallel()
	reads := map[string][]string{}
	for _, img := range images.Catalog() {
		reads[img.Service] = envReadBy(t, img.Binaries[0].Name)
	}
	for _, overlay := range overlays {
		t.Run(overlay, func(t *testing.T) {
			t.Parallel()
			r := render(t, overlay)
			checkOverlay(t, r, reads)
		})
	}
}

func checkOverlay(t *testing.T, r rendered, reads map[string][]string) {
	require.Len(t, r.namespaces, 1, "an overlay creates its namespace")
	ns := r.namespaces[0]
	require.Equal(t, "restricted", ns.Labels["pod-security.kubernetes.io/enforce"])

	t.Run("every object lives in the overlay's namespace", func(t *testing.T) {
		var metas []metav1.Object
		for _, d := range r.deployments {
			metas = append(metas, d)
		}
		for _, o := range r.services {
			metas = append(metas, o)
		}
		for _, o := range r.configMaps {
			metas = append(metas, o)
		}
		for _, o := range r.secrets {
			metas = append(metas, o)
		}
		for _, o := range r.pdbs {
			metas = append(metas, o)
		}
		for _, o := range r.hpas {
			metas = append(metas, o)
		}
		for _, o := range r.netpols {
			metas = append(metas, o)
		}
		for _, o := range r.jobs {
			metas = append(metas, o)
		}
		for _, o := range r.serviceAccounts {
			metas = append(metas, o)
		}
		for _, m := range metas {
			require.Equal(t, ns.Name, m.GetNamespace(), m.GetName())
		}
		for _, doc := range r.cnpgClusters {
			require.Equal(t, ns.Name, decodeCNPGCluster(t, doc).Metadata.Namespace)
		}
	})

	for _, img := range images.Catalog() {
		t.Run(img.Service, func(t *testing.T) {
			d := only(t, r.deployments, func(d *appsv1.Deployment) bool { return d.Name == img.Service })
			checkDeployment(t, r, d, img, reads[img.Service])
		})
	}
	require.Len(t, r.deployments, len(images.Catalog()), "a Deployment per image, no other")

	t.Run("the migrate Job runs the CLI's fleet migration", func(t *testing.T) {
		job := only(t, r.jobs, func(*batchv1.Job) bool { return true })
		checkMigrateJob(t, r, job)
	})

	t.Run("services agree on what they share", func(t *testing.T) {
		identity := envOf(t, r, container(only(t, r.deployments, named[*appsv1.Deployment]("identity"))))
		notes := envOf(t, r, container(only(t, r.deployments, named[*appsv1.Deployment]("notes"))))
		registry := envOf(t, r, container(only(t, r.deployments, named[*appsv1.Deployment]("tenant-registry"))))
		require.Equal(t, identity["TENANTRY_ISSUER"].value, notes["TENANTRY_ISSUER"].value, "notes accepts identity's tokens")
		for _, env := range []map[string]envValue{identity, notes} {
			require.Equal(t, registry["TENANTRY_BASE_DOMAINS"].value, env["TENANTRY_BASE_DOMAINS"].value)
			require.Equal(t, "tenant-registry:50051", env["TENANTRY_REGISTRY_ADDR"].value)
		}
		require.Equal(t, "identity:50052", notes["TENANTRY_IDENTITY_ADDR"].value)
		// The addresses name Services that exist, on their gRPC port.
		for _, addr := range []string{"tenant-registry:50051", "identity:50052"} {
			host, port, err := net.SplitHostPort(addr)
			require.NoError(t, err)
			svc := only(t, r.services, named[*corev1.Service](host))
			require.True(t, slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool {
				return strconv.Itoa(int(p.Port)) == port && p.Name == "grpc"
			}), "Service %s serves gRPC on %s", host, port)
		}
	})

	t.Run("Secrets hold placeholders only", func(t *testing.T) {
		require.NotEmpty(t, r.secrets)
		for _, s := range r.secrets {
			require.Empty(t, s.Data, "%s: put values in stringData as placeholders", s.Name)
			for key, value := range s.StringData {
				require.Contains(t, []string{"REPLACE_ME", ""}, value, "Secret %s key %s must be a placeholder: real secrets never go in git", s.Name, key)
			}
		}
	})

	t.Run("every pod is under a NetworkPolicy", func(t *testing.T) {
		for _, d := range r.deployments {
			require.NotEmpty(t, policiesSelecting(r, d.Spec.Template.Labels), d.Name)
		}
		for _, j := range r.jobs {
			require.NotEmpty(t, policiesSelecting(r, j.Spec.Template.Labels), j.Name)
		}
	})
	t.Run("only identity, notes and the migrate Job reach the registry", func(t *testing.T) {
		registry := only(t, r.deployments, named[*appsv1.Deployment]("tenant-registry"))
		callers := map[string]map[string]string{}
		for _, d := range r.deployments {
			callers[d.Name] = d.Spec.Template.Labels
		}
		for _, j := range r.jobs {
			callers[j.Name] = j.Spec.Template.Labels
		}
		for name, podLabels := range callers {
			allowed := allowedTo(t, r, registry.Spec.Template.Labels, podLabels, 50051)
			require.Equal(t, name != "tenant-registry", allowed, "%s may call the registry's gRPC port", name)
		}
		// Anyone else is refused: a pod of another application.
		require.False(t, allowedTo(t, r, registry.Spec.Template.Labels, map[string]string{"app.kubernetes.io/name": "other"}, 50051))
		require.True(t, allowedTo(t, r, only(t, r.deployments, named[*appsv1.Deployment]("identity")).Spec.Template.Labels,
			map[string]string{"app.kubernetes.io/name": "other"}, 8080), "identity's REST is public")
	})

	t.Run("PodDisruptionBudgets and autoscalers each cover one Deployment", func(t *testing.T) {
		for _, pdb := range r.pdbs {
			sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
			require.NoError(t, err)
			var covered []string
			for _, d := range r.deployments {
				if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
					covered = append(covered, d.Name)
				}
			}
			require.Len(t, covered, 1, "PDB %s", pdb.Name)
		}
		require.Len(t, r.pdbs, len(r.deployments))
		require.Len(t, r.hpas, len(r.deployments))
	})

	for _, doc := range r.cnpgClusters {
		t.Run("the CloudNativePG cluster gives the database URL", func(t *testing.T) {
			c := decodeCNPGCluster(t, doc)
			require.Equal(t, "postgresql.cnpg.io/v1", c.APIVersion)
			require.GreaterOrEqual(t, c.Spec.Instances, 2, "a standby to fail over to")
			owner := c.Spec.Bootstrap.InitDB.Owner
			require.NotEmpty(t, owner)
			require.Contains(t, c.Spec.Bootstrap.InitDB.PostInitApplicationSQL, "ALTER ROLE "+owner+" CREATEROLE",
				"the registry creates tenant roles")
			for _, d := range r.deployments {
				ref := envVar(t, container(d), "DATABASE_URL").ValueFrom.SecretKeyRef
				require.Equal(t, c.Metadata.Name+"-app", ref.Name, "%s reads the Secret CloudNativePG keeps", d.Name)
				require.Equal(t, "uri", ref.Key)
			}
		})
	}
}

func checkDeployment(t *testing.T, r rendered, d *appsv1.Deployment, img images.Image, reads []string) {
	pod := d.Spec.Template
	t.Run("selects its own pods", func(t *testing.T) {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		require.NoError(t, err)
		require.True(t, sel.Matches(labels.Set(pod.Labels)))
		require.Equal(t, img.Service, pod.Labels["app.kubernetes.io/name"])
		require.Nil(t, d.Spec.Replicas, "the autoscaler owns the replica count")
	})
	require.Len(t, pod.Spec.Containers, 1)
	c := pod.Spec.Containers[0]
	grpcPort := int32(img.Ports[0])

	t.Run("runs the image make image builds", func(t *testing.T) {
		name, _, _ := strings.Cut(c.Image, "@")
		if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
			name = name[:i]
		}
		require.True(t, name == img.Name() || strings.HasSuffix(name, "/"+img.Name()), "image %s is not %s", c.Image, img.Name())
		require.Empty(t, c.Command, "the image's entrypoint runs")
		var ports []int
		for _, p := range c.Ports {
			ports = append(ports, int(p.ContainerPort))
		}
		require.ElementsMatch(t, img.Ports, ports, "the ports the image exposes")
	})
	t.Run("is probed over grpc.health.v1 on its gRPC port", func(t *testing.T) {
		for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
			require.NotNil(t, p, name)
			require.NotNil(t, p.GRPC, "%s probe is a gRPC probe", name)
			require.Equal(t, grpcPort, p.GRPC.Port, name)
			require.Nil(t, p.GRPC.Service, "%s probe asks for the server's overall health", name)
		}
		require.Equal(t, grpcPort, namedPort(t, c, "grpc"))
	})
	t.Run("asks for resources and has limits", func(t *testing.T) {
		for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, lim := c.Resources.Requests[res], c.Resources.Limits[res]
			require.False(t, req.IsZero(), "request of %s", res)
			require.False(t, lim.IsZero(), "limit of %s", res)
			require.LessOrEqual(t, req.Cmp(lim), 0, "request of %s within its limit", res)
		}
	})
	t.Run("runs as non-root, read-only, without capabilities", func(t *testing.T) {
		checkPodSecurity(t, pod.Spec, c)
		require.NotNil(t, pod.Spec.TerminationGracePeriodSeconds)
	})
	t.Run("spreads over nodes and zones", func(t *testing.T) {
		var keys []string
		for _, tsc := range pod.Spec.TopologySpreadConstraints {
			keys = append(keys, tsc.TopologyKey)
			sel, err := metav1.LabelSelectorAsSelector(tsc.LabelSelector)
			require.NoError(t, err)
			require.True(t, sel.Matches(labels.Set(pod.Labels)), "the constraint counts this Deployment's pods")
		}
		require.ElementsMatch(t, []string{"kubernetes.io/hostname", "topology.kubernetes.io/zone"}, keys)
	})
	t.Run("has a Service, a PodDisruptionBudget and an autoscaler", func(t *testing.T) {
		svc := only(t, r.services, named[*corev1.Service](img.Service))
		require.True(t, labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels)))
		for _, p := range svc.Spec.Ports {
			require.NotZero(t, namedPort(t, c, p.TargetPort.StrVal), "Service port %s targets a container port", p.Name)
		}
		pdb := only(t, r.pdbs, func(p *policyv1.PodDisruptionBudget) bool {
			sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
			require.NoError(t, err)
			return sel.Matches(labels.Set(pod.Labels))
		})
		require.True(t, pdb.Spec.MaxUnavailable != nil || pdb.Spec.MinAvailable != nil)
		hpa := only(t, r.hpas, func(h *autoscalingv2.HorizontalPodAutoscaler) bool { return h.Spec.ScaleTargetRef.Name == d.Name })
		require.Equal(t, "Deployment", hpa.Spec.ScaleTargetRef.Kind)
		require.Equal(t, "apps/v1", hpa.Spec.ScaleTargetRef.APIVersion)
		require.NotNil(t, hpa.Spec.MinReplicas)
		require.GreaterOrEqual(t, *hpa.Spec.MinReplicas, int32(1))
		require.GreaterOrEqual(t, hpa.Spec.MaxReplicas, *hpa.Spec.MinReplicas)
		require.NotEmpty(t, hpa.Spec.Metrics)
	})
	t.Run("sets only variables the service reads, from objects that exist", func(t *testing.T) {
		env := envOf(t, r, c)
		for name := range env {
			require.Contains(t, reads, name, "%s -h names no variable %s", img.Binaries[0].Name, name)
		}
		require.Contains(t, env, "DATABASE_URL")
		// The listen addresses are those the probes and Services use, on
		// every interface.
		grpcAddrVar := map[string]string{
			"tenant-registry": "TENANTRY_REGISTRY_GRPC_ADDR",
			"identity":        "TENANTRY_IDENTITY_GRPC_ADDR",
			"notes":           "TENANTRY_NOTES_GRPC_ADDR",
		}[img.Service]
		require.Equal(t, fmt.Sprintf(":%d", grpcPort), env[grpcAddrVar].value, grpcAddrVar)
		require.Equal(t, ":9090", env["TENANTRY_METRICS_ADDR"].value)
		require.Equal(t, int32(9090), namedPort(t, c, "metrics"))
		require.Equal(t, "true", env["TENANTRY_ALLOW_INSECURE"].value, "plaintext gRPC inside the cluster, for the probes")
	})
}

// checkPodSecurity checks what Pod Security's "restricted" profile asks.
func checkPodSecurity(t *testing.T, spec corev1.PodSpec, c corev1.Container) {
	t.Helper()
	psc := spec.SecurityContext
	require.NotNil(t, psc)
	require.True(t, psc.RunAsNonRoot != nil && *psc.RunAsNonRoot)
	require.NotNil(t, psc.RunAsUser)
	require.EqualValues(t, images.NonRoot, *psc.RunAsUser)
	require.NotNil(t, psc.SeccompProfile)
	require.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, psc.SeccompProfile.Type)
	require.False(t, spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken, "no API token in the pod")
	sc := c.SecurityContext
	require.NotNil(t, sc)
	require.True(t, sc.RunAsNonRoot != nil && *sc.RunAsNonRoot)
	require.True(t, sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem)
	require.True(t, sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation)
	require.False(t, sc.Privileged != nil && *sc.Privileged)
	require.NotNil(t, sc.Capabilities)
	require.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop)
	require.Empty(t, sc.Capabilities.Add)
}

func checkMigrateJob(t *testing.T, r rendered, job *batchv1.Job) {
	spec := job.Spec.Template.Spec
	require.Contains(t, []corev1.RestartPolicy{corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}, spec.RestartPolicy)
	require.Len(t, spec.Containers, 1)
	c := spec.Containers[0]
	checkPodSecurity(t, spec, c)
	registry := images.Catalog()[0]
	require.Equal(t, "tenant-registry", registry.Service)
	registryImage := container(only(t, r.deployments, named[*appsv1.Deployment]("tenant-registry"))).Image
	require.Equal(t, registryImage, c.Image, "the CLI ships in the registry's image, at the same version")
	require.Equal(t, []string{path.Join(images.BinDir, "tenantry")}, c.Command)
	require.Contains(t, c.Args, "migrate")
	require.Contains(t, c.Args, "--addr=tenant-registry:50051")

	env := envOf(t, r, c)
	require.Contains(t, env, "TENANTRY_OPERATOR_TOKEN", "fleet migrations are the operator's")
	help, err := exec.Command(filepath.Join(binDir, "tenantry"), "help").CombinedOutput()
	require.NoError(t, err)
	for name := range env {
		require.Contains(t, string(help), name, "tenantry help names no variable %s", name)
	}

	// The command line is one the CLI accepts: run against an address
	// where nothing listens, it fails calling the registry (exit 1), not
	// on its arguments (exit 2).
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := lis.Addr().String()
	require.NoError(t, lis.Close())
	args := slices.Clone(c.Args)
	for i, a := range args {
		if strings.HasPrefix(a, "--addr=") {
			args[i] = "--addr=" + closed
		}
	}
	cmd := exec.Command(filepath.Join(binDir, "tenantry"), args...)
	cmd.Env = []string{"TENANTRY_OPERATOR_TOKEN=not-a-real-token-for-the-test"}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "tenantry %v: %v\n%s", args, err, out)
	require.Equal(t, 1, exit.ExitCode(), "tenantry %v:\n%s", args, out)
	require.Contains(t, string(out), "Unavailable", "it got as far as calling the registry")
}

// envValue is a variable of a container: a literal (from env or a
// ConfigMap) or a reference to a Secret's key.
type envValue struct {
	value  string
	secret *corev1.SecretKeySelector
}

// envOf resolves a container's environment as the kubelet would, failing
// on a reference to a ConfigMap, Secret or key the overlay lacks.
func envOf(t *testing.T, r rendered, c corev1.Container) map[string]envValue {
	t.Helper()
	env := map[string]envValue{}
	for _, from := range c.EnvFrom {
		require.NotNil(t, from.ConfigMapRef, "envFrom only from ConfigMaps (secrets are named key by key)")
		cm := only(t, r.configMaps, named[*corev1.ConfigMap](from.ConfigMapRef.Name))
		for k, v := range cm.Data {
			require.NotContains(t, env, k, "%s is set twice", k)
			env[k] = envValue{value: v}
		}
	}
	for _, e := range c.Env {
		require.NotContains(t, env, e.Name, "%s is set twice", e.Name)
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = envValue{value: e.Value}
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			var ok bool
			if keys, byOperator := operatorSecrets(t, r)[ref.Name]; byOperator {
				ok = slices.Contains(keys, ref.Key)
			} else {
				_, ok = only(t, r.secrets, named[*corev1.Secret](ref.Name)).StringData[ref.Key]
			}
			require.True(t, ok || (ref.Optional != nil && *ref.Optional), "Secret %s has no key %s", ref.Name, ref.Key)
			env[e.Name] = envValue{secret: ref}
		default:
			t.Fatalf("%s: only values and Secret keys are used", e.Name)
		}
	}
	return env
}

// operatorSecrets are the Secrets that operators in the overlay keep, with
// their keys: CloudNativePG keeps <cluster>-app for the database's owner
// (its documented keys).
func operatorSecrets(t *testing.T, r rendered) map[string][]string {
	t.Helper()
	secrets := map[string][]string{}
	for _, doc := range r.cnpgClusters {
		c := decodeCNPGCluster(t, doc)
		secrets[c.Metadata.Name+"-app"] = []string{"username", "password", "host", "port", "dbname", "uri", "jdbc-uri", "pgpass"}
	}
	return secrets
}

func envVar(t *testing.T, c corev1.Container, name string) corev1.EnvVar {
	t.Helper()
	i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == name })
	require.GreaterOrEqual(t, i, 0, "%s sets %s", c.Name, name)
	return c.Env[i]
}

func namedPort(t *testing.T, c corev1.Container, name string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("container %s has no port named %s", c.Name, name)
	return 0
}

// policiesSelecting are the NetworkPolicies that apply to pods with
// podLabels.
func policiesSelecting(r rendered, podLabels map[string]string) []*networkingv1.NetworkPolicy {
	var out []*networkingv1.NetworkPolicy
	for _, np := range r.netpols {
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err == nil && sel.Matches(labels.Set(podLabels)) {
			out = append(out, np)
		}
	}
	return out
}

// allowedTo reports whether a pod of the namespace with fromLabels may
// open port on pods with toLabels, by the NetworkPolicies' ingress rules.
func allowedTo(t *testing.T, r rendered, toLabels, fromLabels map[string]string, port int) bool {
	t.Helper()
	policies := policiesSelecting(r, toLabels)
	require.NotEmpty(t, policies)
	for _, np := range policies {
		for _, rule := range np.Spec.Ingress {
			portOK := len(rule.Ports) == 0 || slices.ContainsFunc(rule.Ports, func(p networkingv1.NetworkPolicyPort) bool {
				return p.Port != nil && p.Port.IntValue() == port
			})
			if !portOK {
				continue
			}
			if len(rule.From) == 0 {
				return true
			}
			for _, peer := range rule.From {
				if peer.PodSelector == nil || peer.NamespaceSelector != nil || peer.IPBlock != nil {
					continue // another namespace's pods, or addresses
				}
				sel, err := metav1.LabelSelectorAsSelector(peer.PodSelector)
				require.NoError(t, err)
				if sel.Matches(labels.Set(fromLabels)) {
					return true
				}
			}
		}
	}
	return false
}

func container(d *appsv1.Deployment) corev1.Container { return d.Spec.Template.Spec.Containers[0] }

// named matches an object by name.
func named[T metav1.Object](name string) func(T) bool {
	return func(o T) bool { return o.GetName() == name }
}

// only is the one item matching, failing unless there is exactly one.
func only[T any](t *testing.T, items []T, match func(T) bool) T {
	t.Helper()
	var found []T
	for _, it := range items {
		if match(it) {
			found = append(found, it)
		}
	}
	require.Len(t, found, 1, "exactly one %T matches", *new(T))
	return found[0]
}
