# Certificate and kubeconfig helpers of the local cluster's PKI (sourced by pki.sh and
# user.sh); run them inside "$STATE_DIR/pki", where ca.crt and ca.key live.

# cert NAME CN [ORGS] [SANS]: NAME.crt/.key signed by the CA, once. ORGS is a
# comma-separated list of organisations: Kubernetes reads each as a group.
cert() {
  local name="$1" cn="$2" orgs="${3:-}" sans="${4:-}"
  [[ -f "$name.crt" ]] && return
  local subj="" org org_list
  IFS=, read -ra org_list <<<"$orgs"
  for org in "${org_list[@]}"; do subj+="/O=$org"; done
  subj+="/CN=$cn"
  local ext; ext="$(mktemp)"
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=serverAuth,clientAuth"
    [[ -n "$sans" ]] && echo "subjectAltName=$sans"
  } >"$ext"
  openssl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "$subj" 2>/dev/null
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$name.crt" \
    -days 3650 -extfile "$ext" 2>/dev/null
  rm -f "$name.csr" "$ext"
}

# kubeconfig NAME OUT: a kubeconfig at OUT for the client certificate NAME.crt/.key.
kubeconfig() {
  local name="$1" out="$2"
  cat >"$out" <<KCFG
apiVersion: v1
kind: Config
clusters:
- name: coalmine-local
  cluster:
    certificate-authority-data: $(base64 -w0 ca.crt)
    server: https://127.0.0.1:$APISERVER_PORT
users:
- name: $name
  user:
    client-certificate-data: $(base64 -w0 "$name.crt")
    client-key-data: $(base64 -w0 "$name.key")
contexts:
- name: coalmine-local
  context: {cluster: coalmine-local, user: $name}
current-context: coalmine-local
KCFG
  chmod 600 "$out"
}
