// A Node.js workload: GET/PUT to Azure-style URLs over HTTPS (OpenSSL inside the node binary).
// Usage: node node_https.js URL CA_FILE GO_FILE TOKEN
const fs = require('fs');
const https = require('https');
const [url, caFile, go, token] = process.argv.slice(2);
function waitGo(cb) { fs.existsSync(go) ? cb() : setTimeout(() => waitGo(cb), 50); }
waitGo(() => {
  const req = https.request(url, {
    method: 'PUT', ca: fs.readFileSync(caFile),
    headers: { 'x-ms-version': '2021-08-06', 'Authorization': 'Bearer ' + token, 'Content-Length': 0 },
  }, (res) => { console.log(res.statusCode); res.resume(); res.on('end', () => process.exit(0)); });
  req.on('error', (e) => { console.error(e.message); process.exit(2); });
  req.end();
});
