package http_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestContactRoutes: contacts and groups over HTTP: add (201, with a
// warning for what is missing), show by id or name, change, list, group
// members, CSV import and export, delete; 400 naming the field, 404 for
// an unknown one, 409 for an address another contact has.
func TestContactRoutes(t *testing.T) {
	router := newRouter(t)
	call := request(t, router, filepath.Join(t.TempDir(), "outpost.sock"))
	for _, c := range []struct {
		method, path, body string
		code               int
		has                string
	}{
		{"POST", "/v1/contacts", `{"name": "Amina", "phones": ["+1 555 555 0101"], "email": "amina@example.org"}`, 201, `"+15555550101"`},
		{"POST", "/v1/contacts", `{"name": "Baraka", "phones": ["+15555550102"]}`, 201, `Baraka has no email`},
		{"POST", "/v1/contacts", `{"name": "Chausiku", "phones": ["+15555550101"]}`, 409, `"phones": +15555550101 is already Amina's number`},
		{"POST", "/v1/contacts", `{"name": "Chausiku", "phones": "+15555550103"}`, 400, `"phones": must be a list, not string`},
		{"POST", "/v1/contacts", `{"name": "Chausiku", "fax": "1"}`, 400, `unknown field "fax"`},
		{"POST", "/v1/contacts", `{"name": "Chausiku", "phones": ["12"]}`, 400, `"phones": bad phone number`},
		{"GET", "/v1/contacts/1", ``, 200, `"name": "Amina"`},
		{"GET", "/v1/contacts/baraka", ``, 200, `"phones": [`},
		{"GET", "/v1/contacts/nobody", ``, 404, `no contact "nobody"`},
		{"PATCH", "/v1/contacts/Baraka", `{"email": "baraka@example.org", "tags": ["driver"]}`, 200, `"baraka@example.org"`},
		{"PATCH", "/v1/contacts/Baraka", `{"email": "amina@example.org"}`, 409, `already Amina's email`},
		{"POST", "/v1/groups", `{"name": "staff"}`, 201, `"staff"`},
		{"POST", "/v1/groups", `{"name": "bad name"}`, 400, `group name "bad name"`},
		{"POST", "/v1/groups/staff/members", `{"add": ["Amina", "2"]}`, 200, `"members": 2`},
		{"POST", "/v1/groups/nogroup/members", `{"add": ["Amina"]}`, 404, `group "nogroup"`},
		{"GET", "/v1/groups", ``, 200, `"members": 2`},
		{"GET", "/v1/groups/staff", ``, 200, `"Baraka"`},
		{"POST", "/v1/contacts/import", "name,phones\nDalia,+15555550104\nEli,0712\n", 400, `line 3: "phones"`},
		{"POST", "/v1/contacts/import", "name,phones,groups\nDalia,+15555550104,staff\n", 200, `"imported": 1`},
		{"GET", "/v1/groups/staff", ``, 200, `"members": 3`},
		{"DELETE", "/v1/contacts/Amina", ``, 200, `"removed"`},
		{"DELETE", "/v1/contacts/Amina", ``, 404, `no contact`},
		{"GET", "/v1/contacts/export", ``, 200, "Baraka,'+15555550102,baraka@example.org,,,driver,,staff\nDalia,'+15555550104,,,,,,staff\n"},
		{"DELETE", "/v1/groups/staff", ``, 200, `"ok": true`},
		{"DELETE", "/v1/groups/staff", ``, 404, `group "staff"`},
	} {
		code, b := call(c.method, c.path, c.body)
		text := string(b)
		if code >= 400 {
			var e struct{ Error string }
			if json.Unmarshal(b, &e) != nil || e.Error == "" {
				t.Errorf("%s %s: error not JSON: %s", c.method, c.path, b)
			}
			text = e.Error
		}
		if code != c.code || !strings.Contains(text, c.has) {
			t.Errorf("%s %s %s: %d %s, want %d with %s", c.method, c.path, c.body, code, b, c.code, c.has)
		}
	}
	code, b := call("GET", "/v1/contacts", "")
	var list struct {
		Contacts []struct{ Name string }
		Next     string
	}
	if code != 200 || json.Unmarshal(b, &list) != nil || len(list.Contacts) != 2 || list.Next != "" {
		t.Errorf("list: %d %s", code, b)
	}
	// A page at a time: limit and the cursor of the next page.
	code, b = call("GET", "/v1/contacts?limit=1", "")
	if code != 200 || json.Unmarshal(b, &list) != nil || len(list.Contacts) != 1 || list.Contacts[0].Name != "Baraka" || list.Next == "" {
		t.Fatalf("limit=1: %d %s", code, b)
	}
	code, b = call("GET", "/v1/contacts?limit=1&cursor="+list.Next, "")
	list.Next = ""
	if code != 200 || json.Unmarshal(b, &list) != nil || len(list.Contacts) != 1 || list.Contacts[0].Name != "Dalia" || list.Next != "" {
		t.Errorf("the next page: %d %s", code, b)
	}
	for _, q := range []string{"?limit=0", "?limit=1001", "?cursor=nope!", "?page=2"} {
		if code, b := call("GET", "/v1/contacts"+q, ""); code != 400 {
			t.Errorf("GET /v1/contacts%s: %d %s", q, code, b)
		}
	}
}
