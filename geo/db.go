package geo

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2/mmdbdata"
)

// DBInfo describes an opened database, for logs, metrics and the health endpoint.
type DBInfo struct {
	Path      string
	Type      string    // metadata database_type, e.g. "GeoLite2-City"
	BuildTime time.Time // UTC
}

// DB is one opened MaxMind-format (.mmdb) database with country data: GeoIP2/GeoLite2
// Country, City or Enterprise, or a compatible one (DB-IP's lite databases).
//
// The file is read into memory rather than memory-mapped. A mapping would save the copy,
// but it makes closing a database that a concurrent lookup still reads a crash (SIGSEGV),
// and an operator who overwrites the file in place (cp instead of rename) a SIGBUS. In the
// heap the garbage collector keeps a retired database alive until its last lookup returns,
// which is what lets Locator swap databases without locks (see Locator.Reload).
type DB struct {
	reader *maxminddb.Reader
	// data reads the records in place through cursors, which allocate nothing; the
	// reflection decoder would allocate the result and the subdivisions slice per lookup.
	data *mmdbdata.Decoder
	info DBInfo
}

var errNoCountryData = errors.New("database type has no country data")

// metadataMarker starts the metadata section at the end of every .mmdb file (MaxMind DB
// spec, "Database Metadata").
var metadataMarker = []byte("\xAB\xCD\xEFMaxMind.com")

// OpenDB reads and opens the database at path. It refuses databases whose type carries no
// country (ASN, ISP, Anonymous IP, Connection Type, Domain).
func OpenDB(path string) (*DB, error) {
	// Refused before it is opened: reading a FIFO blocks until someone writes, and a
	// device such as /dev/zero never ends. Either would hold a reload, or the watcher,
	// for good.
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("geo: open %s: not a regular file (%s)", path, fi.Mode().Type())
	}
	buf, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("geo: open %s: %w", path, err)
	}
	db, err := openBytes(path, buf)
	if err != nil {
		return nil, fmt.Errorf("geo: open %s: %w", path, err)
	}
	return db, nil
}

func openBytes(path string, buf []byte) (*DB, error) {
	r, err := maxminddb.OpenBytes(buf)
	if err != nil {
		return nil, err
	}
	md := r.Metadata
	if !hasCountryData(md.DatabaseType) {
		return nil, fmt.Errorf("%w: %q", errNoCountryData, md.DatabaseType)
	}
	// Result.Offset is relative to the data section, which follows the search tree and
	// a 16-byte separator and ends at the metadata marker. OpenBytes checked these bounds.
	start := md.NodeCount*(md.RecordSize/4) + 16
	end := bytes.LastIndex(buf, metadataMarker)
	if end < 0 || start > uint(end) {
		return nil, errors.New("invalid MaxMind DB layout")
	}
	return &DB{
		reader: r,
		data:   mmdbdata.NewDecoder(buf[start:end], 0),
		info: DBInfo{
			Path:      path,
			Type:      md.DatabaseType,
			BuildTime: md.BuildTime().UTC(),
		},
	}, nil
}

// hasCountryData recognises by name the database types whose records have a "country" map.
func hasCountryData(dbType string) bool {
	for _, s := range []string{"Country", "City", "Enterprise"} {
		if strings.Contains(dbType, s) {
			return true
		}
	}
	return false
}

// Info describes the database.
func (d *DB) Info() DBInfo { return d.info }

// Close releases the database. It must not run concurrently with Lookup: a DB shared by
// request handlers is retired through Locator, never closed.
func (d *DB) Close() error {
	if err := d.reader.Close(); err != nil {
		return fmt.Errorf("geo: close %s: %w", d.info.Path, err)
	}
	return nil
}

// Lookup returns the location of ip. Anything that goes wrong (address not in the
// database, malformed record, closed database) gives the unknown Location: unknown is the
// strict jurisdiction, so an error can only make the proxy more careful.
func (d *DB) Lookup(ip netip.Addr) Location {
	if d == nil || !ip.IsValid() {
		return Location{}
	}
	res := d.reader.Lookup(ip.Unmap())
	if !res.Found() {
		return Location{}
	}
	loc, err := d.decode(uint(res.Offset()))
	if err != nil {
		return Location{}
	}
	return loc
}

// maxKeys bounds the work spent on one record of a corrupt or hostile file. GeoIP2 records
// have at most a dozen top-level keys.
const maxKeys = 64

// decode reads country.iso_code and subdivisions[0].iso_code from the record at offset.
func (d *DB) decode(offset uint) (Location, error) {
	var loc Location
	m, err := d.data.CursorAt(offset).MapReader()
	if err != nil {
		return loc, err
	}
	if m.Len() > maxKeys {
		return loc, errors.New("record too large")
	}
	cur := m.First()
	for range m.Len() {
		key, val, err := cur.ReadMapKey()
		if err != nil {
			return loc, err
		}
		switch string(key) {
		case "country":
			iso, err := isoCode(val)
			if err != nil {
				return loc, err
			}
			if !loc.setCountry(iso) {
				return Location{}, errors.New("bad country code")
			}
		case "subdivisions":
			s, err := val.Slice()
			if err != nil {
				return loc, err
			}
			if _, first, ok := s.Next(mmdbdata.Cursor{}); ok {
				iso, err := isoCode(first)
				if err != nil {
					return loc, err
				}
				loc.setSubdivision(iso)
			}
		}
		// Values are mostly pointers to shared maps, so skipping them is cheap.
		if cur, err = val.Skip(); err != nil {
			return loc, err
		}
	}
	if !loc.Known() {
		loc.Subdivision = [3]byte{} // a subdivision without a country is unusable
	}
	return loc, nil
}

// isoCode returns the raw bytes of the iso_code string in the map at c, nil if absent.
func isoCode(c mmdbdata.Cursor) ([]byte, error) {
	m, err := c.MapReader()
	if err != nil {
		return nil, err
	}
	if m.Len() > maxKeys {
		return nil, errors.New("record too large")
	}
	cur := m.First()
	for range m.Len() {
		key, val, err := cur.ReadMapKey()
		if err != nil {
			return nil, err
		}
		if string(key) == "iso_code" {
			// A map key is encoded exactly like a string value (a string, or a pointer to
			// one), and ReadMapKey returns its bytes in place where ReadString would copy.
			iso, _, err := val.ReadMapKey()
			return iso, err
		}
		if cur, err = val.Skip(); err != nil {
			return nil, err
		}
	}
	return nil, nil
}
