#!/usr/bin/env bash
# LocalStack is healthy for traffic-stream when every service it uses is available or running.
set -euo pipefail
health=$(curl -fsS "http://localhost:${GATEWAY_PORT:-4566}/_localstack/health")
for service in ${TRAFFIC_LOCALSTACK_SERVICES:-kinesis s3 iam sts dynamodb}; do
  echo "$health" | grep -Eq "\"$service\": *\"(available|running)\"" || exit 1
done
