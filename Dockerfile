# The Ruckus image: one image for the API, the worker and the agent (pick with the command).
# It leaves out the `temporal` dev server binary (the `dev-server` extra): deployments run a
# real Temporal server.
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

# The agent's data dir exists and belongs to the user the services run as; a named volume
# mounted there starts as a copy of it, owner included.
RUN useradd --create-home ruckus \
    && mkdir -p /data/agent \
    && chown -R ruckus:ruckus /data
USER ruckus
EXPOSE 8000 8081
CMD ["ruckus", "--help"]
