#!/usr/bin/env python3
"""Writes the seed corpus of each fuzz target (committed; re-run to regenerate the seeds).
The campaign adds what libFuzzer finds beside them (docs/fuzzing.md)."""
import hashlib, json, os, struct

HERE = os.path.dirname(os.path.abspath(__file__))

def mp(v):
    """A small MessagePack encoder: what the seeds need."""
    if v is None: return b'\xc0'
    if v is True: return b'\xc3'
    if v is False: return b'\xc2'
    if isinstance(v, int):
        if 0 <= v < 128: return bytes([v])
        if 0 <= v < 2**32: return b'\xce' + struct.pack('>I', v)
        if 0 <= v < 2**64: return b'\xcf' + struct.pack('>Q', v)
        return b'\xd3' + struct.pack('>q', v)
    if isinstance(v, float): return b'\xcb' + struct.pack('>d', v)
    if isinstance(v, str):
        b = v.encode()
        return (bytes([0xa0 | len(b)]) if len(b) < 32 else b'\xd9' + bytes([len(b)])) + b
    if isinstance(v, bytes): return b'\xc4' + bytes([len(v)]) + v
    if isinstance(v, list): return bytes([0x90 | len(v)]) + b''.join(mp(x) for x in v)
    if isinstance(v, dict): return bytes([0x80 | len(v)]) + b''.join(mp(k) + mp(x) for k, x in v.items())
    raise TypeError(v)

def write(target, data):
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    name = 'seed-' + hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)

C = '$CONV'
frames = [
    {"type": "send", "id": 1, "conv": C, "cmid": "c-1", "body": {"kind": "text", "text": "一起去大理吗？"}},
    {"type": "sync", "id": 2, "conv": C, "after": 0, "limit": 50},
    {"type": "read", "id": 3, "conv": C, "seq": 1},
    {"type": "typing", "conv": C},
    {"type": "presence_subscribe", "id": 4, "users": ["1", 2]},
    {"type": "presence_unsubscribe", "id": 5, "users": ["1"]},
    {"type": "ping", "id": "r-6"},
    {"type": "alert_ack", "id": 7, "alert": "1"},
    {"type": "report", "id": 8, "conv": C, "seq": 1, "reason": "spam"},
    {"type": "match_request", "id": 9, "destination": "大理", "from": "2027-01-02", "to": "2027-01-05", "min_days": 2},
    {"type": "match_cancel", "id": 10},
    {"type": "sync", "id": 11, "conv": " 1", "after": 9223372036854775808},
    {"type": "send", "id": 12, "conv": C, "cmid": "c-2", "body": ["text", "x"]},
    {"type": "send", "id": 13, "conv": C, "cmid": "c-3", "body": {"kind": 0, "text": "x"}},
    {"type": "dance", "id": 14},
]
for f in frames:
    j = json.dumps(f, ensure_ascii=False).replace('"$CONV"', '"1"').encode()
    write('frames', j)
    write('frames', mp(json.loads(j)))
write('frames', b'["send",1,"1","c",{"kind":"text","text":"x"}]')
write('frames', mp({"type": b"ping", "id": 1}))
write('frames', b'\x82\xa4type\xa4ping\x01\xa1x')

for t in [b'not.a.token', b'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIiwiaWF0IjoxLCJleHAiOjIsImlzcyI6ImppZWJhbmtlIn0.c2ln',
          b'{"openid":"oAbC123","session_key":"k"}', b'{"errcode":40029,"errmsg":"invalid code"}',
          b'{"errcode":45011,"errmsg":"minute-limit"}', b'{"errcode":0,"openid":""}', b'081abcDEF']:
    write('tokens', t)

bodies = [
    (0, b'{"code":"alice"}'), (0, b'{"code":"bob","provider":"dev"}'), (0, b'["alice"]'),
    (1, b'{"kind":"direct","members":["1"]}'), (1, b'{"kind":"group","title":"\xe5\xa4\xa7\xe7\x90\x86","members":["1",2]}'),
    (2, b'{"members":["1"]}'), (3, b'{"merchant":"1","item":"flowers","amount_fen":100}'),
    (4, b'0'), (4, b'18446744073709551615'), (5, b'1'), (6, b' 1'), (7, b'1'),
    (35, '{"items":[{"product":"1","quantity":2}],"recipient":{"name":"王小花","phone":"+8613812345678","address":"大理"},"deliver_on":"2027-01-02","slot":"morning","note":""}'.encode()),
    (35, b'{"items":[{"product":1,"quantity":-1}],"recipient":{},"deliver_on":"x","slot":"night"}'),
    (36, b'refunding'), (37, b'1{"reason":"\xe8\x8a\xb1\xe8\xb0\xa2\xe4\xba\x86"}'),
    (38, b'{"id":"x","event_type":"TRANSACTION.SUCCESS","resource":{"algorithm":"AEAD_AES_256_GCM","ciphertext":"AA==","nonce":"n","associated_data":"transaction"}}'),
    (39, b'JBK000000000001'), (40, b'1{"periods":3}'), (41, '1{"text":"剪毛了","photos":["/uploads/a.jpg"]}'.encode()),
]
for pick, body in bodies:
    write('rest_body', bytes([pick]) + body)

def records(frames):
    out = b''
    for payload, first in frames:
        out += bytes([len(payload), first]) + payload
    return b'\x01' + out

for f in frames[:11]:
    j = json.dumps(f, ensure_ascii=False).encode()
    if len(j) < 256:
        write('session_stream', records([(j, 0)]))
write('session_stream', records([(json.dumps(frames[0], ensure_ascii=False).encode(), 0), (json.dumps(frames[1]).encode(), 0), (b'\xff\xfe', 0)]))
write('session_stream', records([(mp(json.loads(json.dumps(frames[6]))), 220)]))
write('session_stream', records([(b'{"type":"ping"}', 0x01), (b'{}', 0x80)]))
write('session_stream', b'\x00' + b'\x81\x82\x00\x00\x00\x00{}')
write('session_stream', b'\x00' + b'\xc1\x80\x00\x00\x00\x00')
