# The README's two-line extension of the runner image, for the digits example's model. The
# secret mount only hands pip this machine's CA bundle (a TLS-inspecting proxy is in the way here).
ARG RUNNER_IMAGE=parallelrunstep/runner:0.1.0
FROM ${RUNNER_IMAGE}
RUN --mount=type=secret,id=pip-ca,uid=10001 PIP_CERT=/run/secrets/pip-ca pip install --no-cache-dir scikit-learn==1.9.1 pillow==13.0.0
