# Container images, built offline: no registry, no Docker daemon (docs/images.md).
# Included from the top-level Makefile; the scripts need root (chroot, owners).
IMAGES_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
IMAGES_REPO := $(abspath $(IMAGES_DIR)/../..)

.PHONY: images image-serving image-operator image-test-http image-traefik image-flux image-argocd image-base

images: image-serving image-operator image-test-http ## build every image into _out/images/

image-serving: ## coalmine/serving: Debian 12 + Python 3.11 + the serving extra
	bash $(IMAGES_REPO)/serving_image/build.sh

image-operator: ## coalmine/operator: Debian 12 + Python 3.11 + the operator extra (kopf)
	bash $(IMAGES_REPO)/operator_image/build.sh

image-test-http: ## coalmine/test-http: the cluster smoke tests' static HTTP server
	bash $(IMAGES_REPO)/hack/images/test-http/build.sh

image-traefik: ## coalmine/traefik: the Gateway API implementation the gatewayAPI router is tested on
	bash $(IMAGES_REPO)/hack/gateway/build.sh

image-flux: ## coalmine/flux-source-controller and flux-kustomize-controller, and their CRDs: the GitOps e2e's Flux
	bash $(IMAGES_REPO)/hack/flux/build.sh >/dev/null

image-argocd: ## coalmine/argocd (application controller, repo-server, Redis, git), and its CRDs: the GitOps e2e's Argo CD
	bash $(IMAGES_REPO)/hack/argocd/build.sh >/dev/null

image-base: ## the cached Debian 12 base rootfs alone
	bash $(IMAGES_REPO)/hack/images/debian-base.sh >/dev/null
