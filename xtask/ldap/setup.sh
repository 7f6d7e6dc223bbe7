#!/bin/sh
# Sets up two slapd instances on loopback for the LDAP integration tests, from nothing:
#   a: ldap://127.0.0.1:3389 (StartTLS) and ldaps://127.0.0.1:3636
#   b: ldap://127.0.0.1:3390 (StartTLS) and ldaps://127.0.0.1:3637
# with a CA made here (STATE/ca.pem), a second, unrelated CA (STATE/wrong-ca.pem), and the
# crew of crew.ldif added online. STATE/{a,b}/stop.sh and restart.sh stop and restart one
# instance (keeping its data). Usage: setup.sh STATE_DIR
set -eu
here=$(cd "$(dirname "$0")" && pwd)
state=$1
for i in a b; do [ -f "$state/$i/stop.sh" ] && sh "$state/$i/stop.sh" || true; done
rm -rf "$state"
mkdir -p "$state"
cd "$state"

openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 -subj "/CN=zta-test-ldap-ca" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 3650 -extfile server.ext 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout wrong-ca.key -out wrong-ca.pem -days 3650 -subj "/CN=zta-test-wrong-ca" 2>/dev/null

start() { # instance plain-port tls-port
  dir="$state/$1"
  mkdir -p "$dir/data"
  sed -e "s|@STATE@|$state|g" -e "s|@DIR@|$dir|g" "$here/slapd.conf.in" > "$dir/slapd.conf"
  urls="ldap://127.0.0.1:$2/ ldaps://127.0.0.1:$3/"
  printf '#!/bin/sh\n[ -f %s/slapd.pid ] && kill "$(cat %s/slapd.pid)" 2>/dev/null; for n in $(seq 50); do [ -f %s/slapd.pid ] || exit 0; sleep 0.1; done\n' "$dir" "$dir" "$dir" > "$dir/stop.sh"
  printf '#!/bin/sh\n/usr/sbin/slapd -f %s/slapd.conf -h "%s"\nfor n in $(seq 100); do ldapwhoami -x -H ldap://127.0.0.1:%s >/dev/null 2>&1 && exit 0; sleep 0.1; done; echo "slapd %s did not start" >&2; exit 1\n' "$dir" "$urls" "$2" "$1" > "$dir/restart.sh"
  sh "$dir/restart.sh"
  ldapadd -x -H "ldap://127.0.0.1:$2" -D cn=admin,dc=zta,dc=test -w admin-test-secret -f "$here/crew.ldif" > "$dir/load.log"
}
start a 3389 3636
start b 3390 3637
