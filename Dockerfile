# soap-train with the native TensorFlow GPU backend (@tensorflow/tfjs-node-gpu 4.22, which is
# built against CUDA 11.8 and cuDNN 8). `npm ci` inside the image downloads libtensorflow
# (its install script needs network access at build time); `backend: auto` then picks
# `tensorflow` and logs why. Without a GPU the same image falls back to wasm.
#
#   docker build -t soap-train .
#   docker run --gpus all -v $PWD/runs:/app/runs soap-train --config configs/360m-soap.yaml
FROM nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04
# bash with pipefail: a failed `curl | bash` below fails the build instead of going unnoticed.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl git python3 build-essential libopenblas-dev \
 && curl -fsSL https://deb.nodesource.com/setup_20.x | bash - \
 && apt-get install -y --no-install-recommends nodejs \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY package.json package-lock.json ./
COPY bin ./bin
COPY src ./src
COPY configs ./configs
# native/ + scripts/: the optional LAPACK binding (SOAP/Shampoo's eigh and QR) that `prepare` builds.
COPY native ./native
COPY scripts ./scripts
COPY tsconfig.json ./
# Install scripts must run here: tfjs-node-gpu's fetches libtensorflow, `prepare` builds the
# TypeScript and tokenizes the shipped corpus. Any failure of `npm ci` fails the build; the one
# part allowed to fail is the optional @tensorflow/tfjs-node-gpu (npm ci skips an optional
# dependency whose install script fails), which the next step checks and reports.
RUN npm ci --no-audit --no-fund --foreground-scripts
RUN if node -e "try { require('@tensorflow/tfjs-node-gpu') } catch (e) { console.error(String(e.message).split('\\n')[0]); process.exit(1) }"; then \
      echo 'soap-train image: @tensorflow/tfjs-node-gpu loads: backend auto will try it first'; \
    else \
      echo 'soap-train image: WARNING: the optional @tensorflow/tfjs-node-gpu did not install or load (see the npm ci output above): the image will train on wasm' >&2; \
    fi

ENTRYPOINT ["node", "bin/soap-train"]
CMD ["--help"]
