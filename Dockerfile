# syntax=docker/dockerfile:1.7
# Three images from one file (the last, `worker`, is also the default target):
#   docker build --target operator      -t elibadcode/operator:0.1.0 .
#   docker build --target worker        -t elibadcode/worker:0.1.0 .          (CUDA, tfjs-node-gpu)
#   docker build --target worker-webgpu -t elibadcode/worker:0.1.0-webgpu .   (Vulkan, webgpu)
# Node 24 runs the TypeScript sources directly (type stripping), so there is no compile step.

ARG NODE_VERSION=24.21.0
# npm 11 with install-script approvals (allowScripts / `npm install-scripts approve`).
ARG NPM_VERSION=11.19.1
ARG TFJS_VERSION=4.22.0
# tfjs-node-gpu 4.x loads libtensorflow 2.9 built for CUDA 11 and cuDNN 8; any CUDA 11.x >= 11.2
# runtime with cuDNN 8 satisfies its sonames (libcudart.so.11.0, libcublas.so.11, libcudnn.so.8).
ARG CUDA_IMAGE=nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04

# ---------------------------------------------------------------------------------------------
# Production dependencies, no install scripts (the operator needs none), without the optional
# `webgpu` package (Dawn's 50 MB native GPU binding: only worker images use it).
FROM node:${NODE_VERSION}-bookworm-slim AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund

# ---------------------------------------------------------------------------------------------
# The operator as JavaScript (operator/build.ts): Node would otherwise keep its TypeScript stripper
# (WebAssembly) in memory, ~17 MB of the operator's resident set.
FROM node:${NODE_VERSION}-bookworm-slim AS operator-js
WORKDIR /src
COPY package.json ./
COPY crds/*.ts ./crds/
COPY operator/ ./operator/
RUN node operator/build.ts /out

# ---------------------------------------------------------------------------------------------
# Operator image: node slim, non-root, production dependencies, the operator's JavaScript only.
FROM node:${NODE_VERSION}-bookworm-slim AS operator
# A small young generation and a capped heap keep RSS near the live set (V8 takes these only from
# the command line or here), and fewer malloc arenas keep freed native memory from piling up.
# operator/runtime.ts has the same flags, environment and entrypoint (bench:operator runs with
# them; the chart sets the same; a unit test keeps them equal).
ENV NODE_ENV=production \
    NODE_OPTIONS="--max-semi-space-size=1 --max-old-space-size=192" \
    MALLOC_ARENA_MAX=2
WORKDIR /app
# The runtime does not need a package manager: less to patch, less to abuse.
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /opt/yarn* /usr/local/bin/yarn /usr/local/bin/yarnpkg
COPY --from=prod-deps --chown=0:0 /app/node_modules ./node_modules
COPY --chown=0:0 package.json ./
COPY --from=operator-js --chown=0:0 /out/crds/ ./crds/
COPY --from=operator-js --chown=0:0 /out/operator/ ./operator/
# Files stay root-owned and read-only to the process; the chart adds readOnlyRootFilesystem.
USER 65532:65532
EXPOSE 8080
# start.js loads client-node's KubeConfig without its generated API clients, then runs main.js.
# --optimize-for-size is a V8 flag NODE_OPTIONS may not carry.
ENTRYPOINT ["node", "--optimize-for-size", "operator/start.js"]

# ---------------------------------------------------------------------------------------------
# The worker's own files, the same in both worker images: the CLI, the pipeline, the schema.
FROM node:${NODE_VERSION}-bookworm-slim AS worker-app
WORKDIR /app
COPY --chown=0:0 package.json ./
COPY --chown=0:0 bin/ ./bin/
COPY --chown=0:0 worker/ ./worker/
COPY --chown=0:0 crds/*.ts ./crds/
RUN chmod 0755 bin/elibadcode.js

# ---------------------------------------------------------------------------------------------
# Worker image on the webgpu backend (Dawn over Vulkan): no CUDA, no libtensorflow, only the GPU
# driver's Vulkan ICD, which the NVIDIA container toolkit mounts when the capabilities include
# `graphics`. The ICD needs the GL vendor-neutral dispatch libraries (glvnd) beside the loader.
# Its dependencies: the production ones with `webgpu` (its only install script is for macOS).
FROM node:${NODE_VERSION}-bookworm-slim AS webgpu-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && test -f node_modules/webgpu/dist/linux-x64/dawn.node

FROM node:${NODE_VERSION}-bookworm-slim AS worker-webgpu
RUN apt-get update \
 && apt-get install -y --no-install-recommends libvulkan1 libglvnd0 libgl1 libglx0 libegl1 libopengl0 libgles2 libxext6 \
 && rm -rf /var/lib/apt/lists/* \
 && rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /opt/yarn* /usr/local/bin/yarn /usr/local/bin/yarnpkg
ENV NODE_ENV=production \
    ELIBADCODE_BACKEND=webgpu \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics \
    TMPDIR=/scratch \
    HOME=/scratch
WORKDIR /app
COPY --from=webgpu-deps --chown=0:0 /app/node_modules ./node_modules
COPY --from=worker-app /app/ ./
RUN mkdir -p /scratch && chmod 1777 /scratch \
 && ln -s /app/bin/elibadcode.js /usr/local/bin/elibadcode \
 && elibadcode --help >/dev/null
USER 65532:65532
ENTRYPOINT ["elibadcode"]
CMD ["--help"]

# ---------------------------------------------------------------------------------------------
# Worker dependencies with the native TensorFlow backend. @tensorflow/tfjs-node-gpu's install
# script downloads libtensorflow (GPU) and its prebuilt N-API binding (falling back to a node-gyp
# build, hence the full node image with python3/make/g++). npm 11 blocks dependency install scripts
# unless approved, so the one package is approved explicitly (pinned to its version) and rebuilt;
# no blanket --dangerously-allow-all-scripts.
FROM node:${NODE_VERSION}-bookworm AS worker-deps
ARG NPM_VERSION
ARG TFJS_VERSION
RUN npm install -g "npm@${NPM_VERSION}" --no-audit --no-fund
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --no-audit --no-fund \
 && npm install --omit=dev --no-save --no-audit --no-fund "@tensorflow/tfjs-node-gpu@${TFJS_VERSION}" \
 && npm install-scripts approve @tensorflow/tfjs-node-gpu \
 && npm rebuild @tensorflow/tfjs-node-gpu \
 && ls node_modules/@tensorflow/tfjs-node-gpu/lib/napi-v*/tfjs_binding.node \
 && ls node_modules/@tensorflow/tfjs-node-gpu/deps/lib/libtensorflow.so.2

FROM node:${NODE_VERSION}-bookworm-slim AS node-runtime

# ---------------------------------------------------------------------------------------------
# Worker image: CUDA 11 + cuDNN 8 runtime, the node binary, the CLI and the native backend.
FROM ${CUDA_IMAGE} AS worker
# Scratch (downloads, the cleaned model before upload) is an emptyDir the operator mounts here.
ENV NODE_ENV=production \
    ELIBADCODE_BACKEND=tensorflow \
    TMPDIR=/scratch \
    HOME=/scratch
COPY --from=node-runtime /usr/local/bin/node /usr/local/bin/node
WORKDIR /app
COPY --from=worker-deps --chown=0:0 /app/node_modules ./node_modules
COPY --from=worker-app /app/ ./
# `elibadcode` on PATH: the operator's Job sets command: [elibadcode] and args: [scan, ...]. Node
# resolves the symlinked main module to its real path, so bin/'s relative imports keep working.
RUN mkdir -p /scratch && chmod 1777 /scratch \
 && ln -s /app/bin/elibadcode.js /usr/local/bin/elibadcode \
 && elibadcode --help >/dev/null
USER 65532:65532
# The Job mounts emptyDirs on /scratch and /tmp and reads the summary from /dev/termination-log.
ENTRYPOINT ["elibadcode"]
CMD ["--help"]

