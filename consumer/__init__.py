"""The stream consumer: reads every shard, predicts with both models, writes results to S3."""
