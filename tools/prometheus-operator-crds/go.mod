// Pins the prometheus-operator release whose CRDs (monitoring.coreos.com: ServiceMonitor,
// PrometheusRule, ...) the cluster tier installs to validate the chart's monitoring objects.
// Nothing is built from it: tools/fetch-prometheus-operator-crds.sh downloads the module
// (checked against go.sum) and copies the CRDs out of its example/ folder.
module parallelrunstep/tools/prometheus-operator-crds

go 1.26.0

require github.com/prometheus-operator/prometheus-operator v0.85.0
