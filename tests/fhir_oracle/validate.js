// Independent check of the gateway's FHIR output: parses each file (FHIR JSON or XML) with the npm
// `fhir` package and validates it against the FHIR R4 base specification. Prints one JSON line per
// file: {"file", "errors": [...], "warnings": n}. Exit 0 when it could check every file.
const fs = require('fs');
const { Fhir } = require('fhir');

const fhir = new Fhir();
for (const file of process.argv.slice(2)) {
  const text = fs.readFileSync(file, 'utf8');
  let resource;
  try {
    resource = text.trimStart().startsWith('<') ? fhir.xmlToObj(text) : JSON.parse(text);
  } catch (e) {
    console.log(JSON.stringify({ file, errors: [`unparseable: ${e.message}`], warnings: 0 }));
    continue;
  }
  const result = fhir.validate(resource, { errorOnUnexpected: true });
  const errors = result.messages.filter((m) => m.severity === 'error').map((m) => `${m.location}: ${m.message}`);
  const warnings = result.messages.filter((m) => m.severity !== 'error').length;
  console.log(JSON.stringify({ file, resourceType: resource.resourceType, errors, warnings }));
}
