#!/bin/sh
# tests/data/tls/make-certs.sh DIR - throwaway TLS material for the tests.
#
# Nothing here is committed but this script: every key is generated at
# test time, lives 30 days at most and never leaves the temporary DIR,
# so no private key in the repository can be mistaken for a real one.
#
# Writes into DIR:
#   ca.pem ca.key            a test CA (ECDSA P-256)
#   server.pem server.key    leaf for localhost, SAN DNS:localhost,
#                            IP:127.0.0.1, IP:::1, signed by the CA
#   fullchain.pem            server.pem followed by ca.pem
#   expired.pem              a leaf for server.key whose notAfter is a day
#                            before its notBefore: expired from the start
#   other.key                an unrelated P-256 key (key/cert mismatch)
set -eu

dir=${1:?usage: make-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
umask 077

ossl() {
	# Quiet on success; on failure show what openssl said.
	if ! out=$(openssl "$@" 2>&1); then
		printf '%s\n' "$out" >&2
		exit 1
	fi
}

ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key
ossl req -x509 -new -key ca.key -sha256 -days 30 -subj "/CN=apexd test CA" \
	-addext "basicConstraints=critical,CA:TRUE" \
	-addext "keyUsage=critical,keyCertSign,cRLSign" \
	-out ca.pem

ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server.key
ossl req -new -key server.key -subj "/CN=localhost" -out server.csr
cat > server.ext <<'EXT'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
EXT
ossl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days 30 \
	-extfile server.ext -out server.pem
cat server.pem ca.pem > fullchain.pem
# A negative -days puts notAfter in the past; OpenSSL 3.0 has no -not_after yet.
ossl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days -1 \
	-extfile server.ext -out expired.pem

ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other.key

rm -f server.csr server.ext ca.srl
