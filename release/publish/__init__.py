"""Publishing a release to mirrors: S3-compatible buckets (`s3`, the only module that imports boto3)."""
