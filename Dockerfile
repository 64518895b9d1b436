# copygen image: the same code for the migrate step, workers, beat and Flower.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
# CUDA build of torch for the GPU workers; it runs on CPU too when no GPU is reserved.
RUN pip install "torch>=2.4"
COPY pyproject.toml README.md ./
COPY copygen copygen
COPY trainer trainer
COPY worker worker
COPY db db
COPY alembic alembic
COPY alembic.ini ./
RUN pip install ".[lora]" flower
RUN useradd --create-home copygen
USER copygen
ENTRYPOINT ["copygen"]
