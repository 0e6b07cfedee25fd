#!/usr/bin/python3
"""Sends a two-span trace to `outrider collector` with py-zipkin (Debian's
python3-py-zipkin), Zipkin v2 JSON over HTTP. Prints the trace id.

    py_zipkin_client.py <zipkin host:port>
"""
import sys
import time
import urllib.request

from py_zipkin import Encoding, Kind
from py_zipkin.transport import BaseTransportHandler
from py_zipkin.zipkin import zipkin_span, create_attrs_for_span


class HttpTransport(BaseTransportHandler):
    def __init__(self, address):
        super().__init__()
        self.url = "http://%s/api/v2/spans" % address

    def get_max_payload_bytes(self):
        return None

    def send(self, payload):
        data = payload.encode("utf-8") if isinstance(payload, str) else payload
        req = urllib.request.Request(self.url, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as resp:
            if resp.status != 202:
                raise RuntimeError("collector answered %d" % resp.status)


def main():
    transport = HttpTransport(sys.argv[1])
    attrs = create_attrs_for_span(sample_rate=100.0, use_128bit_trace_id=True)
    with zipkin_span(service_name="py-orders", span_name="reserve item", zipkin_attrs=attrs,
                     transport_handler=transport, encoding=Encoding.V2_JSON, kind=Kind.SERVER,
                     binary_annotations={"order.id": "42"}):
        with zipkin_span(service_name="py-orders", span_name="insert row", kind=Kind.CLIENT) as child:
            child.add_sa_binary_annotation(port=5432, service_name="postgres", host="127.0.0.1")
            child.update_binary_annotations({"db.statement": "insert into orders"})
            time.sleep(0.01)
    print(attrs.trace_id)


if __name__ == "__main__":
    main()
