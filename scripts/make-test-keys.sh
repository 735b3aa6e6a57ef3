#!/usr/bin/env bash
# Regenerates the TEST KEYS used by the sample configuration and the test suite.
#
# These keys are for tests and demos only: their secret halves are committed to the repository,
# so they must never protect real data. Every user ID says so.
#
# The keys are made with GnuPG the way partners' existing keys would be: an Ed25519 primary key
# (certify + sign) with a Curve25519 (cv25519) encryption subkey, no passphrase, no expiry.
#
# Writes:
#   policies/keys/<id>.asc                 public keys of the 8 sample parties
#   test/fixtures/keys/<id>.sec.asc        secret keys of every id (sample parties + fixtures)
#   test/fixtures/keys/<id>.asc            public keys of the fixtures expired, revoked, intruder, governance
#   test/fixtures/keys/fingerprints.json   { "<id>": "<40 hex upper>" }
#
# Usage: scripts/make-test-keys.sh   (from anywhere; needs gpg >= 2.2)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
POLICY_KEYS="$ROOT/policies/keys"
FIXTURE_KEYS="$ROOT/test/fixtures/keys"
mkdir -p "$POLICY_KEYS" "$FIXTURE_KEYS"

GNUPGHOME="$(mktemp -d)"
export GNUPGHOME
chmod 700 "$GNUPGHOME"
cleanup() {
  gpgconf --kill all >/dev/null 2>&1 || true
  rm -rf "$GNUPGHOME"
}
trap cleanup EXIT

GPG=(gpg --batch --quiet --no-tty --pinentry-mode loopback --passphrase '')

# id|display name|email domain
SAMPLE=(
  "council-housing|Council Housing|partners.cordon.test"
  "dwp-benefits|DWP Benefits|partners.cordon.test"
  "dvla|DVLA|partners.cordon.test"
  "hmrc|HMRC|partners.cordon.test"
  "immigration-enforcement|Immigration Enforcement|partners.cordon.test"
  "childrens-services|Children's Services|partners.cordon.test"
  "riverside-homes|Riverside Homes|partners.cordon.test"
  "west-midlands|West Midlands Police|sources.cordon.test"
)
FIXTURES=(
  "expired|Expired Fixture|fixtures.cordon.test"
  "revoked|Revoked Fixture|fixtures.cordon.test"
  "intruder|Intruder Fixture|fixtures.cordon.test"
  "governance|Governance Fixture|fixtures.cordon.test"
)

uid_for() { # name id domain
  printf '%s (TEST KEY - not for real data) <%s@%s>' "$1" "$2" "$3"
}

fingerprint_of() { # uid
  gpg --batch --with-colons --fingerprint -- "=$1" | awk -F: '$1 == "fpr" { print $10; exit }'
}

# make_key uid expiry [extra gpg options...]
make_key() {
  local uid="$1" expiry="$2"
  shift 2
  "${GPG[@]}" "$@" --quick-gen-key "$uid" ed25519 sign,cert "$expiry"
  local fpr
  fpr="$(fingerprint_of "$uid")"
  "${GPG[@]}" "$@" --quick-add-key "$fpr" cv25519 encr "$expiry"
  printf '%s' "$fpr"
}

export_public() { # fpr file
  gpg --batch --armor --export "$1" >"$2"
}

export_secret() { # fpr file
  "${GPG[@]}" --armor --export-secret-keys "$1" >"$2"
  chmod 600 "$2"
}

declare -A FPRS=()

for entry in "${SAMPLE[@]}" "${FIXTURES[@]}"; do
  IFS='|' read -r id name domain <<<"$entry"
  uid="$(uid_for "$name" "$id" "$domain")"
  case "$id" in
    expired)
      # Created in the past with a one-day lifetime: expired long before any test runs.
      fpr="$(make_key "$uid" 1d --faked-system-time 20200101T000000!)"
      ;;
    governance)
      # A governance signer (`cordon policy sign`) only signs: no encryption subkey.
      "${GPG[@]}" --quick-gen-key "$uid" ed25519 sign,cert never
      fpr="$(fingerprint_of "$uid")"
      ;;
    revoked)
      fpr="$(make_key "$uid" never)"
      # GnuPG writes a revocation certificate on key generation; its armor line is escaped with ':'.
      sed 's/^:-----BEGIN/-----BEGIN/' "$GNUPGHOME/openpgp-revocs.d/$fpr.rev" | "${GPG[@]}" --import
      ;;
    *)
      fpr="$(make_key "$uid" never)"
      ;;
  esac
  FPRS[$id]="$fpr"
  export_secret "$fpr" "$FIXTURE_KEYS/$id.sec.asc"
  case "$entry" in
    *"|fixtures.cordon.test") export_public "$fpr" "$FIXTURE_KEYS/$id.asc" ;;
    *) export_public "$fpr" "$POLICY_KEYS/$id.asc" ;;
  esac
  echo "made $id $fpr" >&2
done

{
  echo "{"
  n=0
  total=$(( ${#SAMPLE[@]} + ${#FIXTURES[@]} ))
  for entry in "${SAMPLE[@]}" "${FIXTURES[@]}"; do
    IFS='|' read -r id _ _ <<<"$entry"
    n=$((n + 1))
    sep=","
    [ "$n" -eq "$total" ] && sep=""
    printf '  "%s": "%s"%s\n' "$id" "${FPRS[$id]}" "$sep"
  done
  echo "}"
} >"$FIXTURE_KEYS/fingerprints.json"

cat >"$FIXTURE_KEYS/README.md" <<'EOF'
# Test keys

These are TEST KEYS ONLY, never for real data: their secret halves are in this repository.
Regenerate them with `scripts/make-test-keys.sh` (it rewrites `policies/keys/*.asc`,
this folder and `fingerprints.json`; update pinned fingerprints in `policies/` afterwards).

- `<id>.sec.asc`: secret key (no passphrase) of every test party and fixture.
- `<id>.asc`: public key of the fixtures `expired` (expired in 2020), `revoked` (revocation
  certificate applied), `intruder` (valid, but nobody's pinned key) and `governance` (a
  sign-only key for `cordon policy sign`, named in a test's `CORDON_POLICY_SIGNERS` file). The
  sample parties' public keys are in `policies/keys/`.
- `fingerprints.json`: primary key fingerprints, 40 upper-case hex digits.
EOF

echo "wrote $POLICY_KEYS and $FIXTURE_KEYS" >&2
