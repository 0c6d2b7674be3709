// Tests talk to the infrastructure started by infra/up.sh (see test/run.sh).
process.env.AWS_ACCESS_KEY_ID ??= 'minioadmin';
process.env.AWS_SECRET_ACCESS_KEY ??= 'minioadmin';
process.env.AWS_REGION ??= 'us-east-1';
