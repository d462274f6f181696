package idempotent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
	_ "time/tzdata" // the example loads Europe/Paris on machines without a zoneinfo database

	"github.com/idemkit/idemkit/idempotent"
	"github.com/idemkit/idemkit/idempotent/memstore"
)

type Booking struct {
	Seat string
	At   time.Time
}

// bookingCodec keeps At's location, which encoding/json reduces to a UTC offset.
type bookingCodec struct{}

func (bookingCodec) Encode(b Booking) ([]byte, error) {
	return json.Marshal(map[string]string{"seat": b.Seat, "at": b.At.Format(time.RFC3339Nano), "zone": b.At.Location().String()})
}

func (bookingCodec) Decode(p []byte) (Booking, error) {
	var m map[string]string
	if err := json.Unmarshal(p, &m); err != nil {
		return Booking{}, err
	}
	loc, err := time.LoadLocation(m["zone"])
	if err != nil {
		return Booking{}, err
	}
	at, err := time.Parse(time.RFC3339Nano, m["at"])
	return Booking{Seat: m["seat"], At: at.In(loc)}, err
}

// Wrap replays a recorded result through JSON unless told otherwise. WithCodec gives it a codec that keeps what
// the caller needs, here the time zone of a booking.
func ExampleWithCodec() {
	paris, _ := time.LoadLocation("Europe/Paris")
	book := func(ctx context.Context, o Order) (Booking, error) {
		return Booking{Seat: "12A", At: time.Date(2026, 7, 14, 20, 0, 0, 0, paris)}, nil
	}
	for _, opts := range [][]idempotent.WrapOption{nil, {idempotent.WithCodec[Booking](bookingCodec{})}} {
		handler := idempotent.Wrap(idempotent.New(memstore.New()), idempotent.FieldKey[Order]("idempotencyKey"), book, opts...)
		_, _ = handler(context.Background(), Order{IdempotencyKey: "b1"})
		replay, _ := handler(context.Background(), Order{IdempotencyKey: "b1"})
		fmt.Printf("%s %q\n", replay.At.Format("15:04 -07:00"), replay.At.Location())
	}
	// Output:
	// 20:00 +02:00 ""
	// 20:00 +02:00 "Europe/Paris"
}
