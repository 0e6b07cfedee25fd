#!/usr/bin/env python3
"""A plain AMQP client (pika) talking to the queues and exchanges of Outrider's rabbitmq backend.

  rabbitmq_pika.py URL prepare EXCHANGE QUEUE    declare QUEUE, bind it to the topic's fanout exchange
  rabbitmq_pika.py URL get QUEUE                 one message as JSON (body, content_type, message_id, headers)
  rabbitmq_pika.py URL publish EXCHANGE TRACEPARENT [structured|binary]
                                                 a CloudEvent, as any AMQP app would, in structured mode
                                                 (the event as the body) or binary mode (AMQP binding:
                                                 cloudEvents: application properties, the data as the body)
"""
import json
import sys

import pika


def main():
    url, verb, *args = sys.argv[1:]
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    if verb == "prepare":
        exchange, queue = args
        ch.exchange_declare(exchange=exchange, exchange_type="fanout", durable=True)
        ch.queue_declare(queue=queue, durable=True)
        ch.queue_bind(queue=queue, exchange=exchange)
        print("ready")
    elif verb == "get":
        (queue,) = args
        for _ in range(200):
            method, props, body = ch.basic_get(queue=queue, auto_ack=True)
            if method is not None:
                break
            conn.sleep(0.1)
        else:
            sys.exit("no message")
        headers = {k: (v.decode() if isinstance(v, bytes) else v)
                   for k, v in (props.headers or {}).items()}
        print(json.dumps({"body": body.decode(), "content_type": props.content_type,
                          "message_id": props.message_id,
                          "traceparent": headers.get("traceparent"),
                          "tracestate": headers.get("tracestate"),
                          "headers": {k: str(v) for k, v in headers.items()}}))
    elif verb == "publish":
        exchange, traceparent, *mode = args
        ch.confirm_delivery()
        if mode == ["binary"]:
            ch.basic_publish(exchange=exchange, routing_key="",
                             body=json.dumps({"from": "pika"}).encode(),
                             properties=pika.BasicProperties(
                                 content_type="application/json", delivery_mode=2,
                                 headers={"cloudEvents:specversion": "1.0",
                                          "cloudEvents:id": "from-pika-binary",
                                          "cloudEvents:source": "pika",
                                          "cloudEvents:type": "com.example.sent",
                                          "cloudEvents:traceparent": traceparent,
                                          "traceparent": traceparent}))
        else:
            event = {"specversion": "1.0", "id": "from-pika-1", "source": "pika",
                     "type": "com.example.sent", "datacontenttype": "application/json",
                     "data": {"from": "pika"}}
            ch.basic_publish(exchange=exchange, routing_key="", body=json.dumps(event).encode(),
                             properties=pika.BasicProperties(
                                 content_type="application/cloudevents+json", delivery_mode=2,
                                 headers={"traceparent": traceparent}))
        print("published")
    conn.close()


if __name__ == "__main__":
    main()
