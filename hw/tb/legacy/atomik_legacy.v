// A small model of the original ATOMiK register interface, for the cycle benchmark only
// (../../README.md, "Benchmark"): AXI4-Lite, 32-bit data; one 64-bit ACCUM is three writes,
// SLOT (the original's LOAD_ADDR), ACCUM_LO, then ACCUM_HI which applies it; READ is SLOT
// then STATE_LO and STATE_HI. XOR only, 256 slots, like the original's 256 contexts.
`default_nettype none
module atomik_legacy (
    input  wire        clk,
    input  wire        rst,
    input  wire [7:0]  s_axil_awaddr,
    input  wire        s_axil_awvalid,
    output wire        s_axil_awready,
    input  wire [31:0] s_axil_wdata,
    input  wire [3:0]  s_axil_wstrb,
    input  wire        s_axil_wvalid,
    output wire        s_axil_wready,
    output wire [1:0]  s_axil_bresp,
    output reg         s_axil_bvalid,
    input  wire        s_axil_bready,
    input  wire [7:0]  s_axil_araddr,
    input  wire        s_axil_arvalid,
    output wire        s_axil_arready,
    output reg  [31:0] s_axil_rdata,
    output wire [1:0]  s_axil_rresp,
    output reg         s_axil_rvalid,
    input  wire        s_axil_rready
);
    localparam [7:0] SLOT = 8'h00, ACCUM_LO = 8'h0C, ACCUM_HI = 8'h10, STATE_LO = 8'h14, STATE_HI = 8'h18;
    reg [63:0] acc [0:255];
    reg [7:0]  slot;
    reg [31:0] lo;
    reg        aw_held, w_held;
    reg [7:0]  aw_addr;
    reg [31:0] w_data;
    assign s_axil_awready = !aw_held && !s_axil_bvalid;
    assign s_axil_wready  = !w_held && !s_axil_bvalid;
    assign s_axil_arready = !s_axil_rvalid;
    assign s_axil_bresp = 2'b00;
    assign s_axil_rresp = 2'b00;
    wire unused = &{1'b0, s_axil_wstrb};
    integer i;
    always @(posedge clk) begin
        if (rst) begin
            aw_held <= 1'b0; w_held <= 1'b0; s_axil_bvalid <= 1'b0; s_axil_rvalid <= 1'b0;
            for (i = 0; i < 256; i = i + 1) acc[i] <= 64'd0;
        end else begin
            if (s_axil_awvalid && s_axil_awready) begin aw_held <= 1'b1; aw_addr <= s_axil_awaddr; end
            if (s_axil_wvalid && s_axil_wready) begin w_held <= 1'b1; w_data <= s_axil_wdata; end
            if (aw_held && w_held) begin
                aw_held <= 1'b0; w_held <= 1'b0; s_axil_bvalid <= 1'b1;
                case (aw_addr)
                    SLOT:     slot <= w_data[7:0];
                    ACCUM_LO: lo <= w_data;
                    ACCUM_HI: acc[slot] <= acc[slot] ^ {w_data, lo};
                    default: ;
                endcase
            end
            if (s_axil_bvalid && s_axil_bready) s_axil_bvalid <= 1'b0;
            if (s_axil_arvalid && s_axil_arready) begin
                s_axil_rvalid <= 1'b1;
                s_axil_rdata <= s_axil_araddr == STATE_HI ? acc[slot][63:32] : acc[slot][31:0];
            end
            if (s_axil_rvalid && s_axil_rready) s_axil_rvalid <= 1'b0;
        end
    end
endmodule
`default_nettype wire
