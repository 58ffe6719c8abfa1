"""A small umlauf client: signs a vote as a DSSE envelope and submits it over NATS.

Usage:

    python umlauf_client.py vote --key member.pem --actor DE-BY --body it-planungsrat \
        --circulation <uuid> --choice yes --proposal-sha256 <hex> [--statement TEXT] \
        [--nats nats://127.0.0.1:4222] [--subject-root umlauf]
    python umlauf_client.py check-vectors ../../vectors/signing.json

`vote` prints the service's reply (JSON) and exits 0, or prints the refusal
(`<status> <code>: <message>`) and exits 1. `check-vectors` signs the vector's payload with the
vector's key and exits 0 only if the PAE bytes, the signature and the envelope are byte for byte
those of the vectors. The contract is proto/README.md; the schemas are in proto/schemas/.
"""

import argparse
import asyncio
import base64
import datetime
import hashlib
import json
import sys
import uuid

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

PAYLOAD_TYPE = "application/vnd.umlauf.command.v1+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding: "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def load_key(pem: bytes) -> Ed25519PrivateKey:
    """Loads an Ed25519 private key from PKCS#8 PEM, as `umlauf keygen` and OpenSSL write it."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the key is not an Ed25519 private key")
    return key


def raw_public_key(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def key_id(key: Ed25519PrivateKey) -> str:
    """The key's id: lower-case hex SHA-256 of the raw 32-byte public key."""
    return hashlib.sha256(raw_public_key(key)).hexdigest()


def sign_envelope(key: Ed25519PrivateKey, payload: bytes) -> bytes:
    """The compact DSSE envelope (standard base64) of `payload`, signed by `key`."""
    signature = key.sign(pae(PAYLOAD_TYPE, payload))
    envelope = {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": [
            {"keyid": key_id(key), "sig": base64.b64encode(signature).decode("ascii")}
        ],
    }
    return json.dumps(envelope, separators=(",", ":")).encode("utf-8")


def now_rfc3339() -> str:
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def vote_command(
    body: str,
    actor: str,
    circulation: str,
    choice: str,
    proposal_sha256: str,
    statement=None,
    command_id=None,
    issued_at=None,
) -> bytes:
    """A CastVote command as the compact JSON the client signs (header first, then the fields)."""
    command = {
        "type": "CastVote",
        "command_id": command_id or str(uuid.uuid4()),
        "body": body,
        "actor": actor,
        "issued_at": issued_at or now_rfc3339(),
        "circulation": circulation,
        "choice": choice,
        "proposal_sha256": proposal_sha256,
        "statement": statement,
    }
    return json.dumps(command, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


async def submit(nats_url: str, subject_root: str, envelope: bytes, timeout: float):
    """Submits an envelope; the reply's JSON, or raises RefusedError."""
    import nats

    connection = await nats.connect(nats_url)
    try:
        message = await connection.request(
            f"{subject_root}.v1.submit", envelope, timeout=timeout
        )
    finally:
        await connection.close()
    headers = message.headers or {}
    if "Nats-Service-Error" in headers:
        raise RefusedError(
            headers.get("Nats-Service-Error-Code", "500"), headers["Nats-Service-Error"]
        )
    return json.loads(message.data)


class RefusedError(Exception):
    """The service refused the command."""

    def __init__(self, status: str, error: str):
        super().__init__(f"{status} {error}")
        self.status = status
        self.code, _, self.message = error.partition(": ")


def check_vectors(path: str) -> list:
    """The differences between this signer and the signing vectors (empty if none)."""
    with open(path, encoding="utf-8") as file:
        vectors = json.load(file)
    key = load_key(vectors["private_key_pem"].encode("ascii"))
    seed = bytes.fromhex(vectors["seed_hex"])
    problems = []
    if key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    ) != seed:
        problems.append("the PEM key is not the seed")
    if base64.b64encode(raw_public_key(key)).decode("ascii") != vectors["public_key_base64"]:
        problems.append("public key differs")
    if key_id(key) != vectors["key_id"]:
        problems.append("key id differs")
    payload = vectors["payload"].encode("utf-8")
    if pae(vectors["payload_type"], payload).hex() != vectors["pae_hex"]:
        problems.append("PAE differs")
    signature = key.sign(pae(vectors["payload_type"], payload))
    if base64.b64encode(signature).decode("ascii") != vectors["signature_base64"]:
        problems.append("signature differs")
    if sign_envelope(key, payload).decode("utf-8") != vectors["envelope_json"]:
        problems.append("envelope differs")
    command = json.loads(vectors["payload"])
    rebuilt = vote_command(
        command["body"],
        command["actor"],
        command["circulation"],
        command["choice"],
        command["proposal_sha256"],
        command["statement"],
        command["command_id"],
        command["issued_at"],
    )
    if rebuilt != payload:
        problems.append("the vote built from the vector's fields differs from its payload")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    vote = commands.add_parser("vote", help="sign and submit a vote")
    vote.add_argument("--key", required=True, help="Ed25519 private key, PKCS#8 PEM")
    vote.add_argument("--actor", required=True, help="the member voting, e.g. DE-BY")
    vote.add_argument("--body", required=True)
    vote.add_argument("--circulation", required=True)
    vote.add_argument("--choice", required=True, choices=["yes", "no", "abstain"])
    vote.add_argument("--proposal-sha256", required=True)
    vote.add_argument("--statement")
    vote.add_argument("--nats", default="nats://127.0.0.1:4222")
    vote.add_argument("--subject-root", default="umlauf")
    vote.add_argument("--timeout", type=float, default=30.0)
    check = commands.add_parser("check-vectors", help="check the signer against signing.json")
    check.add_argument("path")
    args = parser.parse_args(argv)

    if args.command == "check-vectors":
        problems = check_vectors(args.path)
        for problem in problems:
            print(problem, file=sys.stderr)
        print("signing vectors: ok" if not problems else "signing vectors: FAILED")
        return 0 if not problems else 1

    with open(args.key, "rb") as file:
        key = load_key(file.read())
    payload = vote_command(
        args.body, args.actor, args.circulation, args.choice, args.proposal_sha256, args.statement
    )
    envelope = sign_envelope(key, payload)
    try:
        reply = asyncio.run(submit(args.nats, args.subject_root, envelope, args.timeout))
    except RefusedError as error:
        print(f"refused: {error}", file=sys.stderr)
        return 1
    print(json.dumps(reply))
    return 0


if __name__ == "__main__":
    sys.exit(main())
