"""Kafka KRaft broker: topics with partitions and a produce/consume round trip."""

import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

pytestmark = pytest.mark.integration


def consume(bootstrap: str, topic: str, count: int, timeout: float = 30.0) -> list:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.subscribe([topic])
        messages = []
        for message in iter(lambda: consumer.poll(timeout), None):
            assert message.error() is None, message.error()
            messages.append(message)
            if len(messages) == count:
                break
        return messages
    finally:
        consumer.close()


def test_created_topic_has_the_requested_partitions(kafka_broker):
    topic = kafka_broker.create_topic(partitions=3)

    metadata = kafka_broker.admin().list_topics(topic, timeout=10)

    assert sorted(metadata.topics[topic].partitions) == [0, 1, 2]
    assert topic in kafka_broker.topics()


def test_produce_and_consume_round_trip(kafka_broker):
    topic = kafka_broker.create_topic(partitions=3)
    events = {f"key-{n}": f"value-{n}" for n in range(30)}
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap, "acks": "all"})
    for key, value in events.items():
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0

    messages = consume(kafka_broker.bootstrap, topic, len(events))

    assert {m.key().decode(): m.value().decode() for m in messages} == events
    assert {m.partition() for m in messages} == {0, 1, 2}


def test_committed_offsets_are_kept_by_the_group_coordinator(kafka_broker):
    topic = kafka_broker.create_topic()
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap})
    for n in range(5):
        producer.produce(topic, value=str(n))
    producer.flush(30)
    group = f"committer-{uuid.uuid4().hex[:8]}"
    consumer = Consumer(
        {"bootstrap.servers": kafka_broker.bootstrap, "group.id": group, "auto.offset.reset": "earliest"}
    )
    try:
        consumer.subscribe([topic])
        while (message := consumer.poll(30)) is not None and message.offset() < 2:
            pass
        consumer.commit(offsets=[TopicPartition(topic, 0, 3)], asynchronous=False)
        committed = consumer.committed([TopicPartition(topic, 0)], timeout=10)
    finally:
        consumer.close()
    assert committed[0].offset == 3


def test_delete_topic(kafka_broker):
    topic = kafka_broker.create_topic()

    kafka_broker.delete_topic(topic)

    assert topic not in kafka_broker.topics()
