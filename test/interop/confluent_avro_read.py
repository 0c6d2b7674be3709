"""Reads an audit topic with Confluent's own client (confluent-kafka from PyPI):
its Consumer, and its AvroDeserializer resolving each record's schema id through
the schema registry, as Kafka Connect, ksqlDB or a Flink job would.

Usage: python confluent_avro_read.py BROKERS TOPIC REGISTRY_URL COUNT [TIMEOUT_S]
Prints one JSON object per record on stdout: {"offset", "partition", "schema_id",
"value"}, with timestamp-micros as integer microseconds and UUIDs as text, so the
test compares them with what it sent. Exits 1 when fewer than COUNT records
arrive in time, 2 when a record cannot be decoded.
"""
import datetime
import json
import sys
import time
import uuid

from confluent_kafka import Consumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def plain(v):
    if isinstance(v, datetime.datetime):
        return (v - EPOCH) // datetime.timedelta(microseconds=1)
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    return v


def main():
    brokers, topic, registry_url, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    timeout_s = float(sys.argv[5]) if len(sys.argv) > 5 else 60.0
    deserializer = AvroDeserializer(SchemaRegistryClient({"url": registry_url}))
    consumer = Consumer({
        "bootstrap.servers": brokers,
        "group.id": "confluent-reader-%d" % time.time_ns(),
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    consumer.subscribe([topic])
    seen = 0
    deadline = time.time() + timeout_s
    try:
        while seen < count and time.time() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                raise RuntimeError(str(msg.error()))
            raw = msg.value()
            try:
                value = deserializer(raw, SerializationContext(topic, MessageField.VALUE))
            except Exception as err:  # report which record, then fail
                print("undecodable record at %d/%d: %s" % (msg.partition(), msg.offset(), err), file=sys.stderr)
                return 2
            print(json.dumps({
                "partition": msg.partition(),
                "offset": msg.offset(),
                "schema_id": int.from_bytes(raw[1:5], "big"),
                "value": plain(value),
            }))
            seen += 1
    finally:
        consumer.close()
    if seen < count:
        print("only %d of %d records within %.0f s" % (seen, count, timeout_s), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
