# The Ruckus image: one image for the API, the worker and the agent (pick with the command).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY common ./common
COPY agent ./agent
COPY activities ./activities
COPY workflows ./workflows
COPY api ./api
COPY ruckus ./ruckus
RUN pip install --no-cache-dir .

RUN useradd --create-home ruckus && mkdir -p /data && chown ruckus /data
USER ruckus
EXPOSE 8000 8081
CMD ["ruckus", "--help"]
