// Turns internal/transport/playground/examples.graphql into GraphiQL's default tabs (see the file's header
// for its format).
import source from '../../../internal/transport/playground/examples.graphql';

const tabStart = /^### /;
const variablesLine = /^#\s*variables:\s*(.*)$/;

export function exampleTabs(text = source) {
  const tabs = [];
  let current = null;
  for (const line of text.split('\n')) {
    if (tabStart.test(line)) {
      current = { query: [], variables: null };
      tabs.push(current);
      current.query.push(line.replace(tabStart, '# '));
      continue;
    }
    if (current === null) continue; // the file's own header
    const vars = line.match(variablesLine);
    if (vars) {
      current.variables = JSON.stringify(JSON.parse(vars[1]), null, 2);
      continue;
    }
    current.query.push(line);
  }
  return tabs.map(({ query, variables }) => ({
    query: query.join('\n').trim() + '\n',
    variables,
  }));
}
