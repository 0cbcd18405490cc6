package kubernetes

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// strict decodes YAML into the API's Go types of the groups Tenantry
// uses, refusing unknown and duplicate fields and kinds of other groups.
var strict = func() runtime.Decoder {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme,
		policyv1.AddToScheme, networkingv1.AddToScheme, autoscalingv2.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	return json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme,
		json.SerializerOptions{Yaml: true, Strict: true})
}()

// rendered is an overlay's output, by kind.
type rendered struct {
	deployments     []*appsv1.Deployment
	services        []*corev1.Service
	configMaps      []*corev1.ConfigMap
	secrets         []*corev1.Secret
	serviceAccounts []*corev1.ServiceAccount
	namespaces      []*corev1.Namespace
	pdbs            []*policyv1.PodDisruptionBudget
	hpas            []*autoscalingv2.HorizontalPodAutoscaler
	netpols         []*networkingv1.NetworkPolicy
	jobs            []*batchv1.Job
	// cnpgClusters are CloudNativePG's Cluster objects, which are no
	// Kubernetes type: checked on their own (cnpgCluster).
	cnpgClusters [][]byte
}

// kustomizeDir is deploy/kubernetes.
func kustomizeDir(t *testing.T) string {
	t.Helper()
	return filepath.Join(repoRoot(), "deploy", "kubernetes")
}

// render builds the kustomization at dir (relative to deploy/kubernetes)
// and decodes every object strictly.
func render(t *testing.T, dir string) rendered {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(kustomizeDir(t), dir))
	require.NoError(t, err, "kustomize build %s", dir)
	var out rendered
	for _, res := range m.Resources() {
		doc, err := res.AsYAML()
		require.NoError(t, err)
		if res.GetApiVersion() == "postgresql.cnpg.io/v1" {
			out.cnpgClusters = append(out.cnpgClusters, doc)
			continue
		}
		obj, err := decodeStrict(doc)
		require.NoError(t, err, "%s %s/%s", dir, res.GetKind(), res.GetName())
		switch o := obj.(type) {
		case *appsv1.Deployment:
			out.deployments = append(out.deployments, o)
		case *corev1.Service:
			out.services = append(out.services, o)
		case *corev1.ConfigMap:
			out.configMaps = append(out.configMaps, o)
		case *corev1.Secret:
			out.secrets = append(out.secrets, o)
		case *corev1.ServiceAccount:
			out.serviceAccounts = append(out.serviceAccounts, o)
		case *corev1.Namespace:
			out.namespaces = append(out.namespaces, o)
		case *policyv1.PodDisruptionBudget:
			out.pdbs = append(out.pdbs, o)
		case *autoscalingv2.HorizontalPodAutoscaler:
			out.hpas = append(out.hpas, o)
		case *networkingv1.NetworkPolicy:
			out.netpols = append(out.netpols, o)
		case *batchv1.Job:
			out.jobs = append(out.jobs, o)
		default:
			t.Fatalf("%s renders a %T, which no check looks at", dir, obj)
		}
	}
	return out
}

// decodeStrict decodes one object; any strict-decoding complaint is an
// error, even though the serializer hands back the object with it.
func decodeStrict(doc []byte) (runtime.Object, error) {
	obj, _, err := strict.Decode(doc, nil, nil)
	if err != nil {
		return nil, err
	}
	return obj, nil
}

// The decoder refuses what the API server would: a misspelt field, a kind
// it does not know.
func TestStrictDecodingRefusesUnknownFields(t *testing.T) {
	t.Parallel()
	_, err := decodeStrict([]byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replica: 2}\n"))
	require.ErrorContains(t, err, `unknown field "spec.replica"`)
	_, err = decodeStrict([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\ndata: {a: c}\n"))
	require.Error(t, err, "a duplicate field")
	_, err = decodeStrict([]byte("apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: x}\n"))
	require.Error(t, err, "a kind of another group")
	obj, err := decodeStrict([]byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: 2}\n"))
	require.NoError(t, err)
	require.EqualValues(t, 2, *obj.(*appsv1.Deployment).Spec.Replicas)
}

// cnpgCluster is the part of CloudNativePG's Cluster that the example
// uses. CloudNativePG's Go types would bring in controller-runtime, so the
// example is decoded strictly into this subset instead: a field the
// example adds must be added here, after checking it against
// CloudNativePG's documentation.
type cnpgCluster struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Instances int `json:"instances"`
		Storage   struct {
			Size string `json:"size"`
		} `json:"storage"`
		Bootstrap struct {
			InitDB struct {
				Database               string   `json:"database"`
				Owner                  string   `json:"owner"`
				PostInitApplicationSQL []string `json:"postInitApplicationSQL"`
			} `json:"initdb"`
		} `json:"bootstrap"`
		PostgreSQL struct {
			Parameters map[string]string `json:"parameters"`
		} `json:"postgresql"`
	} `json:"spec"`
}

func decodeCNPGCluster(t *testing.T, doc []byte) cnpgCluster {
	t.Helper()
	var c cnpgCluster
	require.NoError(t, yaml.UnmarshalStrict(doc, &c), "%s", doc)
	require.Equal(t, "Cluster", c.Kind)
	return c
}

// repoRoot is the directory holding go.work.
func repoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			panic("no go.work above the test's directory")
		}
		dir = parent
	}
}
