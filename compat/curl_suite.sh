#!/usr/bin/env bash
# The seeds' curl commands, as printed, with real values, against a live deskd.
set -uo pipefail
: "${DESKD_URL:?}" "${DESKD_EMAIL:?}" "${DESKD_TOKEN:?}" "${DESKD_TAG:?}"
passed=0; failed=0
check() { # name expected-status actual-status
  if [ "$2" = "$3" ]; then passed=$((passed + 1)); echo "ok     curl $1"; else failed=$((failed + 1)); echo "FAILED curl $1: expected $2, got $3"; fi
}
out=$(mktemp)
org_id=$(curl -s -u "$DESKD_EMAIL/token:$DESKD_TOKEN" -X POST -H "Content-Type: application/json" \
  -d "{\"organization\": {\"name\": \"Curl Org $DESKD_TAG\"}}" "$DESKD_URL/api/v2/organizations" | python3 -c 'import json,sys; print(json.load(sys.stdin)["organization"]["id"])')

body=$(cat <<JSON
{
"user": {
"name": "Curl User",
"email": "curl-$DESKD_TAG@example.org",
"custom_role_id": "",
"external_id": "curl-$DESKD_TAG",
"identities": [
{
"type": "email",
"value": "curl-$DESKD_TAG-alt@example.org"
},
{
"type": "twitter",
"value": "curl$DESKD_TAG"
}
],
"organization": {
"name": "Curl Org $DESKD_TAG"
},
"organization_id": "$org_id",
"role": "end-user"
}
}
JSON
)
status=$(curl -s -o "$out" -w '%{http_code}' -u "$DESKD_EMAIL/token:$DESKD_TOKEN" -X POST \
-H "Content-Type: application/json" \
-H "Accept: application/json" \
-d "$body" \
"$DESKD_URL/api/v2/users/create_or_update")
check "create_or_update creates" 201 "$status"
status=$(curl -s -o "$out" -w '%{http_code}' -u "$DESKD_EMAIL/token:$DESKD_TOKEN" -X POST \
-H "Content-Type: application/json" \
-H "Accept: application/json" \
-d "$body" \
"$DESKD_URL/api/v2/users/create_or_update")
check "create_or_update updates" 200 "$status"

many=$(python3 -c "import json,sys; u=json.loads(sys.argv[1])['user']; a=dict(u, email='curl-$DESKD_TAG-m1@example.org', external_id='curl-$DESKD_TAG-m1', identities=[]); b=dict(u, email='curl-$DESKD_TAG-m2@example.org', external_id='curl-$DESKD_TAG-m2', identities=[]); print(json.dumps({'users':[a,b]}))" "$body")
status=$(curl -s -o "$out" -w '%{http_code}' -u "$DESKD_EMAIL/token:$DESKD_TOKEN" -X POST \
-H "Content-Type: application/json" \
-H "Accept: application/json" \
-d "$many" \
"$DESKD_URL/api/v2/users/create_or_update_many")
check "create_or_update_many answers with a job" 200 "$status"
job=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["job_status"]["id"])' "$out")
state=""
for _ in $(seq 200); do
  state=$(curl -s -u "$DESKD_EMAIL/token:$DESKD_TOKEN" "$DESKD_URL/api/v2/job_statuses/$job.json" | python3 -c 'import json,sys; j=json.load(sys.stdin)["job_status"]; print(j["status"], sum(r.get("status") == "Created" for r in (j["results"] or [])))')
  [ "${state%% *}" = completed ] && break
  sleep 0.05
done
check "the job completes with two created users" "completed 2" "$state"
rm -f "$out"
echo "curl: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
