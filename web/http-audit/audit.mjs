// Runs graphql-http's server audits (the GraphQL over HTTP specification's MUSTs, SHOULDs and
// MAYs) against the server at the URL given, one audit at a time, and prints one JSON array:
// {id, name, status, reason} for each audit, status "ok" or graphql-http's "notice", "warn" or
// "error". internal/app's TestGraphQLOverHTTPAudits runs it and fails on anything but "ok".
//
//   node audit.mjs http://127.0.0.1:8080/query
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs <url of the GraphQL endpoint>');
  process.exit(2);
}

const results = [];
for (const audit of serverAudits({ url })) {
  const r = await audit.fn();
  const out = { id: r.id, name: r.name, status: r.status };
  if (r.status !== 'ok') {
    out.reason = r.reason;
    out.httpStatus = r.response?.status;
  }
  results.push(out);
}
console.log(JSON.stringify(results));
