// Drives a polyquery server with the official @looker/sdk + @looker/sdk-node, unchanged.
//
// Usage: node sdk_flow.js BASE_URL CLIENT_ID CLIENT_SECRET
// Login from a looker.ini, create_query (idempotent), a task per result format polled to complete,
// query_task_results, multi_results (DelimArray), run_query, run_inline_query, a slow task read as
// not ready then killed, an error task, an unknown id, logout. Exits non-zero on the first mismatch.
'use strict'

const fs = require('fs')
const os = require('os')
const path = require('path')
const { LookerNodeSDK, NodeSettingsIniFile } = require('@looker/sdk-node')
const { DelimArray } = require('@looker/sdk-rtl')

const FIELDS = ['users.state', 'order_items.count', 'order_items.total_sale_price']
const FORMATS = ['json', 'json_detail', 'json_bi', 'inline_json', 'csv', 'txt', 'md', 'html', 'xlsx', 'sql']

function fail(message) {
  console.error(`MISMATCH: ${message}`)
  process.exit(1)
}

function check(condition, message) {
  if (!condition) fail(message)
}

function sdkFor(baseUrl, clientId, clientSecret) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pq-looker-'))
  const ini = path.join(dir, 'looker.ini')
  fs.writeFileSync(
    ini,
    `[Looker]\nbase_url=${baseUrl}\nclient_id=${clientId}\nclient_secret=${clientSecret}\nverify_ssl=false\ntimeout=60\n`
  )
  for (const key of Object.keys(process.env)) {
    if (key.startsWith('LOOKERSDK_')) delete process.env[key]
  }
  return LookerNodeSDK.init40(new NodeSettingsIniFile('LOOKERSDK', ini, 'Looker'))
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function waitFor(sdk, id, statuses) {
  for (let i = 0; i < 300; i++) {
    const task = await sdk.ok(sdk.query_task(id))
    if (statuses.includes(task.status)) return task
    check(['added', 'running'].includes(task.status), `task ${id} status ${task.status}`)
    await sleep(100)
  }
  fail(`task ${id} never reached ${statuses}`)
}

function checkResult(format, result, limit) {
  switch (format) {
    case 'json':
    case 'inline_json': {
      // JSON content types arrive parsed.
      check(Array.isArray(result) && result.length > 0 && result.length <= limit, `${format}: ${JSON.stringify(result).slice(0, 80)}`)
      for (const row of result) check(FIELDS.every((f) => f in row), `${format}: row keys ${Object.keys(row)}`)
      break
    }
    case 'json_detail':
      check(Array.isArray(result.data) && result.data.length > 0 && !result.errors, 'json_detail data')
      check(result.fields.measures.map((f) => f.name).join() === FIELDS.slice(1).join(), 'json_detail measures')
      break
    case 'json_bi':
      check(Array.isArray(result.rows) && result.metadata.fields.dimensions[0].name === 'users.state', 'json_bi')
      break
    case 'csv': {
      check(typeof result === 'string' && result.startsWith('Users State,Order Items Count'), `csv: ${result.slice(0, 40)}`)
      const newlines = result.split('\n').length - 1
      check(newlines >= 1 && newlines <= limit + 1, `csv newlines ${newlines}`)
      break
    }
    case 'txt':
      check(result.startsWith('Users State\t'), 'txt')
      break
    case 'md':
      check(result.startsWith('| Users State |'), 'md')
      break
    case 'html':
      check(result.includes('<table'), 'html')
      break
    case 'xlsx':
      check(typeof result === 'string' && result.startsWith('PK'), 'xlsx as a binary string')
      break
    case 'sql':
      check(result.startsWith('SELECT') && FIELDS.every((f) => result.includes(f)), 'sql')
      break
  }
}

async function expectError(promise, what) {
  try {
    await promise
  } catch (e) {
    check(typeof e.message === 'string' && e.message.length > 0, `${what}: error without message`)
    return e
  }
  fail(`${what}: no error`)
}

async function main() {
  const [baseUrl, clientId, clientSecret] = process.argv.slice(2)
  if (!clientSecret) fail('usage: sdk_flow.js BASE_URL CLIENT_ID CLIENT_SECRET')
  const sdk = sdkFor(baseUrl, clientId, clientSecret)
  const write = {
    model: 'thelook',
    view: 'order_items',
    fields: FIELDS,
    filters: { 'users.country': '-NULL' },
    sorts: ['order_items.count desc 0'],
    limit: '10',
  }
  const query = await sdk.ok(sdk.create_query(write))
  check(typeof query.id === 'string' && query.id !== '0', 'query id')
  const again = await sdk.ok(sdk.create_query(write))
  check(again.id === query.id, 'create_query is not idempotent')

  const ids = {}
  for (const format of FORMATS) {
    const task = await sdk.ok(sdk.create_query_task({ body: { query_id: query.id, result_format: format, source: 'ts' } }))
    check(/^[0-9a-f]{32}$/.test(task.id), `task id ${task.id}`)
    check(task.result_format === format && task.source === 'ts', 'task fields')
    await waitFor(sdk, task.id, ['complete'])
    checkResult(format, await sdk.ok(sdk.query_task_results(task.id)), 10)
    ids[format] = task.id
  }

  const unknown = '0'.repeat(32)
  const multi = await sdk.ok(sdk.query_task_multi_results(new DelimArray([ids.json, ids.csv, unknown])))
  check(multi[ids.json].status === 'complete' && Array.isArray(multi[ids.json].data), 'multi json')
  check(typeof multi[ids.csv].data === 'string', 'multi csv')
  check(multi[unknown].status === 'missing', 'multi missing')

  checkResult('json', await sdk.ok(sdk.run_query({ query_id: query.id, result_format: 'json' })), 10)
  checkResult('csv', await sdk.ok(sdk.run_query({ query_id: query.id, result_format: 'csv', limit: 3 })), 3)
  const inline = await sdk.ok(
    sdk.run_inline_query({ result_format: 'json', body: { model: 'thelook', view: 'products', fields: ['products.brand', 'products.count'], limit: '5' } })
  )
  check(Array.isArray(inline) && inline.length === 5, 'run_inline_query')

  // sdk-codegen's "Query calls": the TypeScript SDK writes an empty filter set as [].
  const unfiltered = await sdk.ok(
    sdk.create_query({ model: 'thelook', view: 'users', fields: ['users.state', 'users.count'], filters: [], limit: '3' })
  )
  const unfilteredRows = await sdk.ok(sdk.run_query({ query_id: unfiltered.id, result_format: 'json_label' }))
  check(unfilteredRows.length === 3 && 'Users State' in unfilteredRows[0], `filters []: ${JSON.stringify(unfilteredRows)}`)
  const me = await sdk.ok(sdk.me('id,display_name'))
  check(me.display_name === clientId && Object.keys(me).length === 2, `me: ${JSON.stringify(me)}`)

  // A slow task: its results read as not ready ("" for 202), then it is killed.
  const slow = await sdk.ok(sdk.create_query({ model: 'pqtest', view: 'slow', fields: ['sleepy.nap'] }))
  const slowTask = await sdk.ok(sdk.create_query_task({ body: { query_id: slow.id, result_format: 'json' } }))
  const pending = await sdk.ok(sdk.query_task_results(slowTask.id))
  check(pending === '', `not-ready results should be "", got ${JSON.stringify(pending)}`)
  await sdk.ok(sdk.kill_query(slowTask.id))
  check((await waitFor(sdk, slowTask.id, ['killed'])).status === 'killed', 'kill')

  // An error task: json_detail is 200 with errors[], json throws.
  const broken = await sdk.ok(sdk.create_query({ model: 'pqtest', view: 'users', fields: ['users.broken'] }))
  const detailTask = await sdk.ok(sdk.create_query_task({ body: { query_id: broken.id, result_format: 'json_detail' } }))
  await waitFor(sdk, detailTask.id, ['error'])
  const detail = await sdk.ok(sdk.query_task_results(detailTask.id))
  check(detail.data.length === 0 && detail.errors.length > 0, 'json_detail errors')
  const jsonTask = await sdk.ok(sdk.create_query_task({ body: { query_id: broken.id, result_format: 'json' } }))
  await waitFor(sdk, jsonTask.id, ['error'])
  await expectError(sdk.ok(sdk.query_task_results(jsonTask.id)), 'error task results')

  const notFound = await expectError(sdk.ok(sdk.query_task(unknown)), 'unknown task')
  check(notFound.message === 'Not found', `unknown task message ${notFound.message}`)
  const invalid = await expectError(sdk.ok(sdk.create_query({ model: 'thelook', view: 'users', fields: ['users.nope'] })), 'unknown field')
  check(invalid.message === 'Validation Failed', `validation message ${invalid.message}`)

  check(await sdk.authSession.logout(), 'logout')
  console.log('ok')
}

main().catch((e) => fail(e && e.stack ? e.stack : String(e)))
