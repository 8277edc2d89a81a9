import { expect } from 'chai';
import { formatDiagnostic, parseServiceDefinitions } from '../../../src/config/index.js';

/** Broken service definition files and exactly what each must report. */
interface Case {
  name: string;
  file: string;
  text: string;
  errors: string[];
}

const lines = (...l: string[]): string => l.join('\n') + '\n';

const CASES: Case[] = [
  {
    name: 'unknown key with a suggestion',
    file: 'web.hcl',
    text: lines('service {', '  name = "web"', '  prot = 80', '}'),
    errors: ['web.hcl:3:3: service.prot: unknown key; did you mean "port"?'],
  },
  {
    name: 'unknown PascalCase key gets a PascalCase suggestion',
    file: 'web.json',
    text: '{"Service": {"Name": "web", "Prot": 80}}',
    errors: ['web.json:1:29: Service.Prot: unknown key; did you mean "Port"?'],
  },
  {
    name: 'unknown key inside a check',
    file: 'web.hcl',
    text: lines(
      'service {',
      '  name = "web"',
      '  check {',
      '    http = "http://x/"',
      '    intreval = "10s"',
      '  }',
      '}',
    ),
    errors: [
      'web.hcl:3:3: service.check.interval: missing required key (every check except a ttl check needs one)',
      'web.hcl:5:5: service.check.intreval: unknown key; did you mean "interval"?',
    ],
  },
  {
    name: 'unknown top-level key',
    file: 'web.hcl',
    text: lines('servce {', '  name = "web"', '}'),
    errors: ['web.hcl:1:1: servce: unknown key; did you mean "service"?'],
  },
  {
    name: 'missing name',
    file: 'web.hcl',
    text: lines('service {', '  port = 80', '}'),
    errors: ['web.hcl:1:1: service.name: missing required key'],
  },
  {
    name: 'port that is not a number',
    file: 'web.hcl',
    text: lines('service {', '  name = "web"', '  port = "abc"', '}'),
    errors: ['web.hcl:3:10: service.port: expected an integer, got string "abc"'],
  },
  {
    name: 'port out of range',
    file: 'web.hcl',
    text: lines('service {', '  name = "web"', '  port = 70000', '}'),
    errors: ['web.hcl:3:10: service.port: port 70000 is out of range: use 1-65535 (or 0 for none)'],
  },
  {
    name: 'bad duration',
    file: 'web.hcl',
    text: lines(
      'service {',
      '  name = "web"',
      '  check {',
      '    tcp = "localhost:80"',
      '    interval = "10 seconds"',
      '  }',
      '}',
    ),
    errors: [
      'web.hcl:5:16: service.check.interval: invalid duration "10 seconds": use Go syntax such as "10s", "1m30s" or "500ms"',
    ],
  },
  {
    name: 'check with both http and tcp',
    file: 'web.hcl',
    text: lines(
      'service {',
      '  name = "web"',
      '  check {',
      '    http = "http://localhost/health"',
      '    tcp = "localhost:80"',
      '    interval = "10s"',
      '  }',
      '}',
    ),
    errors: [
      'web.hcl:5:5: service.check.tcp: conflicts with http: a check takes exactly one of args, http, tcp, grpc, ttl',
    ],
  },
  {
    name: 'check without interval',
    file: 'web.hcl',
    text: lines(
      'service {',
      '  name = "web"',
      '  check {',
      '    http = "http://localhost/health"',
      '  }',
      '}',
    ),
    errors: [
      'web.hcl:3:3: service.check.interval: missing required key (every check except a ttl check needs one)',
    ],
  },
  {
    name: 'check of no kind',
    file: 'web.hcl',
    text: lines('service {', '  name = "web"', '  checks = [{ interval = "10s" }]', '}'),
    errors: ['web.hcl:3:13: service.checks[0]: a check needs one of args, http, tcp, grpc, ttl'],
  },
  {
    name: 'unterminated string',
    file: 'web.hcl',
    text: lines('service {', '  name = "web', '  port = 80', '}'),
    errors: ['web.hcl:2:10: unterminated string: missing closing quote'],
  },
  {
    name: 'missing closing brace',
    file: 'web.hcl',
    text: lines('service {', '  name = "web"', '  check {', '    ttl = "10s"', '}'),
    errors: ['web.hcl:6:1: expected "}" to close the block opened at 1:9, found end of file'],
  },
  {
    name: 'duplicate JSON key',
    file: 'web.json',
    text: '{\n  "service": {\n    "name": "web",\n    "port": 80,\n    "name": "api"\n  }\n}\n',
    errors: ['web.json:5:5: duplicate key "name" (first defined at 3:5)'],
  },
  {
    name: 'duplicate HCL key',
    file: 'web.hcl',
    text: lines('service {', '  name = "web"', '  port = 80', '  port = 81', '}'),
    errors: ['web.hcl:4:3: service.port: duplicate key (first set at 3:3)'],
  },
  {
    name: 'name with a slash',
    file: 'web.hcl',
    text: lines('service {', '  name = "web/v1"', '}'),
    errors: [
      'web.hcl:2:10: service.name: invalid service name "web/v1": use letters, digits, ".", "_" and "-", starting with a letter or digit',
    ],
  },
  {
    name: 'id with a space, and an empty name',
    file: 'web.hcl',
    text: lines('service {', '  name = ""', '  id = "web 1"', '}'),
    errors: [
      'web.hcl:2:10: service.name: service name must not be empty',
      'web.hcl:3:8: service.id: invalid service id "web 1": use letters, digits, ".", "_" and "-", starting with a letter or digit',
    ],
  },
  {
    name: 'name longer than a DNS label',
    file: 'web.hcl',
    text: lines('service {', `  name = "${'a'.repeat(64)}"`, '}'),
    errors: [
      'web.hcl:2:10: service.name: service name is 64 characters long; at most 63 are allowed',
    ],
  },
  {
    name: 'meta key and value too long',
    file: 'web.hcl',
    text: lines(
      'service {',
      '  name = "web"',
      '  meta {',
      `    ${'k'.repeat(129)} = "v"`,
      `    ok = "${'v'.repeat(513)}"`,
      '  }',
      '}',
    ),
    errors: [
      `web.hcl:4:5: service.meta.${'k'.repeat(129)}: meta key is 129 characters long; at most 128 are allowed`,
      'web.hcl:5:10: service.meta.ok: meta value is 513 bytes long; at most 512 are allowed',
    ],
  },
  {
    name: 'wrong types',
    file: 'web.hcl',
    text: lines(
      'service {',
      '  name = "web"',
      '  tags = "v1"',
      '  enable_tag_override = "yes"',
      '  meta = ["a"]',
      '  check = "x"',
      '}',
    ),
    errors: [
      'web.hcl:3:10: service.tags: expected a list, got string "v1"',
      'web.hcl:4:25: service.enable_tag_override: expected a boolean (true or false), got string "yes"',
      'web.hcl:5:10: service.meta: expected an object of key/value pairs, got a list',
      'web.hcl:6:11: service.check: expected a block or a list of objects, got string "x"',
    ],
  },
  {
    name: 'kind with a typo',
    file: 'web.hcl',
    text: lines('service {', '  name = "web"', '  kind = "conect-proxy"', '}'),
    errors: [
      'web.hcl:3:10: service.kind: invalid value "conect-proxy": must be one of "connect-proxy", "mesh-gateway", "terminating-gateway", "ingress-gateway", "api-gateway"; did you mean "connect-proxy"?',
    ],
  },
  {
    name: 'connect-proxy without a destination',
    file: 'proxy.hcl',
    text: lines(
      'service {',
      '  name = "web-proxy"',
      '  kind = "connect-proxy"',
      '  proxy { local_service_port = 8080 }',
      '}',
    ),
    errors: [
      'proxy.hcl:4:3: service.proxy: destination_service_name is required when kind is "connect-proxy"',
    ],
  },
  {
    name: 'upstream without destination_name and with a bad port',
    file: 'web.hcl',
    text: lines(
      'service {',
      '  name = "web"',
      '  connect { sidecar_service { proxy {',
      '    upstreams = [{ destination = "api", local_bind_port = -1 }]',
      '  } } }',
      '}',
    ),
    errors: [
      'web.hcl:4:18: service.connect.sidecar_service.proxy.upstreams[0].destination_name: missing required key',
      'web.hcl:4:20: service.connect.sidecar_service.proxy.upstreams[0].destination: unknown key',
      'web.hcl:4:59: service.connect.sidecar_service.proxy.upstreams[0].local_bind_port: port -1 is out of range: use 1-65535',
    ],
  },
  {
    name: 'sidecar together with connect native',
    file: 'web.hcl',
    text: lines(
      'service {',
      '  name = "web"',
      '  connect {',
      '    native = true',
      '    sidecar_service {}',
      '  }',
      '}',
    ),
    errors: ['web.hcl:5:5: service.connect.sidecar_service: cannot be combined with native = true'],
  },
  {
    name: 'upstream without local_bind_port, and a sidecar that sets its id',
    file: 'web.hcl',
    text: lines(
      'service {',
      '  name = "web"',
      '  connect { sidecar_service {',
      '    id = "my-proxy"',
      '    proxy { upstreams = [{ destination_name = "api" }] }',
      '  } }',
      '}',
    ),
    errors: [
      'web.hcl:4:5: service.connect.sidecar_service.id: a sidecar_service cannot set its id: the agent names it "<service id>-sidecar-proxy"',
      'web.hcl:5:26: service.connect.sidecar_service.proxy.upstreams[0].local_bind_port: missing required key',
    ],
  },
  {
    name: 'upstreams on one listener, on the same destination, and on the sidecar port',
    file: 'web.hcl',
    text: lines(
      'service {',
      '  name = "web"',
      '  connect { sidecar_service {',
      '    port = 21000',
      '    proxy {',
      '      upstreams { destination_name = "api", local_bind_port = 9191 }',
      '      upstreams { destination_name = "db", local_bind_port = 9191 }',
      '      upstreams {',
      '        destination_name = "api"',
      '        local_bind_address = "127.0.0.2"',
      '        local_bind_port = 21000',
      '      }',
      '    }',
      '  } }',
      '}',
      'services = [{',
      '  name = "pxy", kind = "connect-proxy", port = 20000',
      '  proxy = { destination_service_name = "db", upstreams = [',
      '    { destination_name = "a", local_bind_port = 20000 },',
      '  ] }',
      '}]',
    ),
    errors: [
      'web.hcl:7:7: service.connect.sidecar_service.proxy.upstreams[1].local_bind_port: 127.0.0.1:9191 is already the listener of upstreams[0]',
      "web.hcl:8:7: service.connect.sidecar_service.proxy.upstreams[2].local_bind_port: 21000 is the proxy's own port; choose another",
      'web.hcl:8:7: service.connect.sidecar_service.proxy.upstreams[2].destination_name: "api" is already upstreams[0]',
      "web.hcl:19:5: services[0].proxy.upstreams[0].local_bind_port: 20000 is the proxy's own port; choose another",
    ],
  },
  {
    name: 'invalid check status and negative threshold',
    file: 'web.hcl',
    text: lines(
      'service {',
      '  name = "web"',
      '  check {',
      '    ttl = "30s"',
      '    status = "ok"',
      '    failures_before_critical = -2',
      '  }',
      '}',
    ),
    errors: [
      'web.hcl:5:14: service.check.status: invalid value "ok": must be one of "passing", "warning", "critical"',
      'web.hcl:6:32: service.check.failures_before_critical: must be at least 0, got -2',
    ],
  },
  {
    name: 'top-level check without name',
    file: 'checks.hcl',
    text: lines('check {', '  id = "mem"', '  ttl = "10s"', '}'),
    errors: ['checks.hcl:1:1: check.name: missing required key'],
  },
  {
    name: 'service_id on a service check',
    file: 'web.hcl',
    text: lines(
      'service {',
      '  name = "web"',
      '  check {',
      '    service_id = "web"',
      '    ttl = "10s"',
      '  }',
      '}',
    ),
    errors: ['web.hcl:4:5: service.check.service_id: unknown key'],
  },
  {
    name: 'label on a service block',
    file: 'web.hcl',
    text: lines('service "web" {', '  name = "web"', '}'),
    errors: ['web.hcl:1:9: service: unexpected label "web": this block takes no label'],
  },
  {
    name: 'weights and tagged addresses',
    file: 'web.hcl',
    text: lines(
      'service {',
      '  name = "web"',
      '  weights { passing = 0 }',
      '  tagged_addresses { lan = { port = 80 } }',
      '}',
    ),
    errors: [
      'web.hcl:3:23: service.weights.passing: must be at least 1, got 0',
      'web.hcl:4:22: service.tagged_addresses.lan.address: missing required key',
    ],
  },
  {
    name: 'duplicate service ids in one file',
    file: 'web.hcl',
    text: lines('service { name = "web" }', 'services = [{ name = "api" }, { name = "web" }]'),
    errors: ['web.hcl:2:31: service: duplicate service id "web" (first defined at web.hcl:1:1)'],
  },
  {
    name: 'a JSON document that is not an object',
    file: 'web.json',
    text: '["web"]',
    errors: ['web.json:1:1: expected an object at the top level, got a list'],
  },
  {
    name: 'several errors in one file, all reported in order',
    file: 'web.hcl',
    text: lines(
      'service {',
      '  id = "web/1"',
      '  prot = 80',
      '  port = 70000',
      '  check {',
      '    http = "http://localhost/"',
      '    tcp = "localhost:80"',
      '    timeout = "1 second"',
      '  }',
      '}',
      'services = [{ name = "api", tags = [1, {}] }]',
    ),
    errors: [
      'web.hcl:1:1: service.name: missing required key',
      'web.hcl:2:8: service.id: invalid service id "web/1": use letters, digits, ".", "_" and "-", starting with a letter or digit',
      'web.hcl:3:3: service.prot: unknown key; did you mean "port"?',
      'web.hcl:4:10: service.port: port 70000 is out of range: use 1-65535 (or 0 for none)',
      'web.hcl:5:3: service.check.interval: missing required key (every check except a ttl check needs one)',
      'web.hcl:7:5: service.check.tcp: conflicts with http: a check takes exactly one of args, http, tcp, grpc, ttl',
      'web.hcl:8:15: service.check.timeout: invalid duration "1 second": use Go syntax such as "10s", "1m30s" or "500ms"',
      'web.hcl:11:40: services[0].tags[1]: expected a string, got an object',
    ],
  },
];

describe('config/service definitions: broken files', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const result = parseServiceDefinitions(c.text, c.file);
      expect(result.errors.map(formatDiagnostic)).to.deep.equal(c.errors);
      // A file with errors contributes nothing.
      expect(result.services).to.deep.equal([]);
      expect(result.checks).to.deep.equal([]);
    });
  }

  it('gives structured diagnostics as well as formatted ones', () => {
    const [d] = parseServiceDefinitions(
      'service {\n  name = "web"\n  prot = 80\n}\n',
      'web.hcl',
    ).errors;
    expect(d).to.deep.equal({
      file: 'web.hcl',
      line: 3,
      column: 3,
      key: 'service.prot',
      message: 'unknown key; did you mean "port"?',
    });
  });
});
